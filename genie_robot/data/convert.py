"""What every reader shares: the episode record it yields, the resumable write loop, frame
rate resampling and cutting long recordings into clips.

A reader validates its inputs when constructed (so bad input fails before the output store
is created) and then offers `episodes(done)` and `count(done)`. `done` holds the origins
already in the output store; a reader skips those, before decoding them where it can, so
running the same command again after an interruption resumes where it stopped."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from genie_robot.data.store import EpisodeWriter
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError

T = TypeVar("T")
RESIZE_BATCH = 32  # frames resized per call: one call per frame is ~6x slower on CPU


@dataclass
class Converted:
    """One episode ready for the store: frames already at the stored resolution."""

    frames: np.ndarray  # uint8 [T, S, S, 3]
    actions: np.ndarray | None = None  # float32 [T-1, A]
    action_names: list[str] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)  # source, robot, fps, language, split, origin
    state: dict[str, np.ndarray] | None = None  # per-frame robot state, [T, D] each


class Reader(Protocol):
    def count(self, done: set[str]) -> int | None:
        """Episodes still to convert (for the progress bar), None when unknown."""

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        """The episodes whose origin is not in `done`, one at a time."""


def convert(out: str | Path, reader: Reader, desc: str, overwrite: bool = False, progress: bool = True) -> dict:
    """Append every episode the reader yields to the store at `out`, one at a time.

    Each episode is complete on disk before the next is read, so an interrupted conversion
    leaves a valid store of the finished episodes."""
    with EpisodeWriter(out, overwrite=overwrite) as writer:
        done, already_there = writer.origins(), len(writer)
        written = frames = 0
        start = time.perf_counter()
        bar = tqdm(reader.episodes(done), desc=desc, unit="ep", total=reader.count(done), disable=not progress)
        for episode in bar:
            writer.append(episode.frames, episode.actions, episode.action_names, episode.state, **episode.attrs)
            written += 1
            frames += len(episode.frames)
            bar.set_postfix(frames_per_s=f"{frames / (time.perf_counter() - start):.0f}")
    return {"written": written, "frames": frames, "already_there": already_there,
            "seconds": time.perf_counter() - start}


def resample(stamped: Iterable[tuple[float, T]], fps: float | None) -> Iterator[tuple[float, T]]:
    """Items at times t0, t0 + 1/fps, t0 + 2/fps ... up to the last item's time, each the
    latest item at or before its tick (an item repeats when fps exceeds the input rate).
    `stamped` must be in time order (seconds); fps None passes everything through."""
    if fps is None:
        yield from stamped
        return
    if not fps > 0:
        raise InputError(f"--fps must be > 0, got {fps}")
    t0 = last = None
    tick = 0
    previous = None
    for time_s, item in stamped:
        if t0 is None:
            t0 = time_s
        # Every tick before this item's time belongs to the previous item.
        while previous is not None and t0 + tick / fps < time_s - 1e-9:
            yield t0 + tick / fps, previous
            tick += 1
        previous, last = item, time_s
    if previous is not None and t0 + tick / fps <= last + 1e-9:
        yield t0 + tick / fps, previous


def cut(items: Iterable[T], clip_frames: int | None) -> Iterator[list[T]]:
    """Consecutive clips of `clip_frames` items (the last may be shorter; a single left-over
    item is dropped, since an episode needs two frames). None: everything as one clip."""
    if clip_frames is not None and clip_frames < 2:
        raise InputError(f"--clip-frames must be >= 2 (an episode needs two frames), got {clip_frames}")
    clip: list[T] = []
    for item in items:
        clip.append(item)
        if clip_frames is not None and len(clip) == clip_frames:
            yield clip
            clip = []
    if len(clip) >= 2:
        yield clip


def resize_stream(items: Iterable[tuple[np.ndarray, T]], size: int) -> Iterator[tuple[np.ndarray, T]]:
    """(frame [H, W, 3], payload) pairs with each frame resized to size x size, RESIZE_BATCH at
    a time, so memory holds one batch of full-size frames however long the stream is."""
    batch: list[tuple[np.ndarray, T]] = []

    def flush():
        frames = resize_video(np.stack([frame for frame, _ in batch]), size)
        yield from zip(frames, (payload for _, payload in batch))
        batch.clear()

    for frame, payload in items:
        if batch and (len(batch) == RESIZE_BATCH or frame.shape != batch[0][0].shape):
            yield from flush()
        batch.append((frame, payload))
    if batch:
        yield from flush()


def check_size(size: int) -> int:
    if size < 8:
        raise InputError(f"--size must be >= 8 pixels, got {size}")
    return size


def check_policy_run(policy: str, policies, episodes: int, steps: int) -> None:
    """Arguments of a generator that runs a policy for `episodes` x `steps` frames."""
    if policy not in policies:
        raise InputError(f"unknown policy {policy!r}; choose one of {sorted(policies)}")
    if steps < 2:
        raise InputError(f"--steps must be >= 2 frames, got {steps}")
    if episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {episodes}")
