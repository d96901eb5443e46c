"""Random clips from a weighted mixture of episode stores.

Clip i is a pure function of (seed, i): which store (by weight), which window (uniform over
all valid windows of that store), so the dataset is deterministic under any number of
DataLoader workers, shards by rank with a DistributedSampler, and resumes by index."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from genie_robot.data.store import EpisodeStore
from genie_robot.data.transforms import as_size, resize_video
from genie_robot.errors import InputError, StoreError


@dataclass(frozen=True)
class Source:
    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, spec: str | os.PathLike | Source) -> Source:
        """`FILE.h5` or `FILE.h5:WEIGHT`."""
        if isinstance(spec, Source):
            return spec
        text = str(spec)
        path, sep, weight = text.rpartition(":")
        if sep and path and not weight.startswith(("/", "\\")):
            try:
                value = float(weight)
            except ValueError:
                return cls(Path(text))
            if not value > 0:
                raise StoreError(f"{text}: mixture weight must be > 0, got {weight}")
            return cls(Path(path), value)
        return cls(Path(text))


class ClipDataset(Dataset):
    """`ds[i]` -> {"video": uint8 [T, H, W, 3], "actions": float32 [T-1, A] (when the mixture
    has actions), "positions": float32 [T, Q, 3] (with_positions: the recorded positions of
    `position_names`, metres), "source", "episode", "start"}.

    With frame_skip k the clip keeps every k-th frame, and actions[t] is the mean of the k
    raw actions between kept frames t and t+1."""

    def __init__(
        self,
        sources,
        clip_len: int = 16,
        frame_skip: int = 1,
        size: int | tuple[int, int] | None = None,
        seed: int = 0,
        length: int = 1_000_000,
        with_actions: bool | None = None,
        allow_upscale: bool = False,
        with_positions: bool = False,
    ):
        if clip_len < 1:
            raise InputError(f"clip_len must be >= 1, got {clip_len}")
        if frame_skip < 1:
            raise InputError(f"frame_skip must be >= 1, got {frame_skip}")
        self.sources = [Source.parse(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
        if not self.sources:
            raise StoreError("no episode stores given; pass at least one FILE.h5")
        self.clip_len, self.frame_skip, self.seed, self.length = clip_len, frame_skip, seed, length
        self.size = as_size(size)
        self.stores = [EpisodeStore(s.path) for s in self.sources]
        self.span = (clip_len - 1) * frame_skip + 1  # raw frames one clip covers
        self._windows = []  # per store: (episode indices, cumulative window counts)
        for source, store in zip(self.sources, self.stores):
            if len(store) == 0:
                raise StoreError(f"{source.path} holds no episodes; convert some into it or leave it out of the mixture")
            lengths = np.array([e.num_frames for e in store], dtype=np.int64)
            eligible = np.flatnonzero(lengths >= self.span)
            if len(eligible) == 0:
                longest = int(lengths.max())
                raise StoreError(
                    f"{source.path}: a clip of {clip_len} frames with frame_skip {frame_skip} spans "
                    f"{self.span} frames, longer than every episode (longest {longest}); "
                    "lower --clip-len/--frame-skip or use longer episodes"
                )
            self._windows.append((eligible, np.cumsum(lengths[eligible] - self.span + 1)))
            if self.size is not None and not allow_upscale:
                store.resolution_note(self.size[0])
        weights = np.array([s.weight for s in self.sources], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.action_names = self._mixture_actions(with_actions)
        self.position_names = self._mixture_positions() if with_positions else None
        self._position_cache = {}

    def _layouts(self, layout_of) -> tuple[set, str]:
        """Every episode layout of the mixture (`layout_of(episode)`, a tuple of names or None), and
        each store's layouts for an error message."""
        per_store = {str(source.path): {layout_of(e) for e in store} for source, store in zip(self.sources, self.stores)}
        detail = "; ".join(f"{p}: {sorted(map(str, layouts))}" for p, layouts in per_store.items())
        return {layout for layouts in per_store.values() for layout in layouts}, detail

    def _mixture_actions(self, with_actions: bool | None) -> list[str] | None:
        if with_actions is False:
            return None
        flat, detail = self._layouts(lambda e: tuple(e.action_names) if e.action_names else None)
        if len(flat) == 1 and None not in flat:
            return list(next(iter(flat)))
        if with_actions:
            raise StoreError(
                f"actions differ across the mixture (or some episodes have none), so clips cannot carry "
                f"one action vector: {detail}. Train without actions or convert the stores to one action layout"
            )
        return None

    def _mixture_positions(self) -> list[str]:
        flat, detail = self._layouts(lambda e: tuple(e.position_names) or None)
        if len(flat) != 1 or None in flat:
            raise StoreError(f"recorded positions differ across the mixture (or some episodes have none), so clips "
                             f"cannot carry one position layout: {detail}. Train on stores of `genie-robot data mujoco`")
        return list(next(iter(flat)))

    def _positions(self, store_idx: int, episode_idx: int) -> np.ndarray:
        """An episode's positions [T, Q, 3], read once: a few small arrays, where clips are many."""
        key = (store_idx, episode_idx)
        if key not in self._position_cache:
            self._position_cache[key] = self.stores[store_idx][episode_idx].read_positions()
        return self._position_cache[key]

    def mixture_summary(self, clips: int) -> str:
        """Each store's share of `clips` drawn clips and how often, on average, a clip window of
        it is seen: the effective mixture, which the weights alone do not show."""
        lines = []
        for source, store, share, (_, cumulative) in zip(self.sources, self.stores, self.weights, self._windows):
            windows = int(cumulative[-1])
            lines.append(f"  {source.path}: weight {source.weight:g} -> {share:.1%} of clips ({len(store)} episodes, "
                         f"{windows} clip windows, each seen {share * clips / windows:.2f}x on average)")
        return "mixture of episode stores:\n" + "\n".join(lines)

    def __len__(self) -> int:
        return self.length

    def locate(self, index: int) -> tuple[int, int, int]:
        """(store, episode, start frame) of clip `index`."""
        rng = np.random.default_rng((self.seed, index))
        store = int(rng.choice(len(self.stores), p=self.weights)) if len(self.stores) > 1 else 0
        episodes, cumulative = self._windows[store]
        window = int(rng.integers(cumulative[-1]))
        slot = int(np.searchsorted(cumulative, window, side="right"))
        start = window - (int(cumulative[slot - 1]) if slot else 0)
        return store, int(episodes[slot]), start

    def __getitem__(self, index: int) -> dict:
        store_idx, episode_idx, start = self.locate(index)
        episode = self.stores[store_idx][episode_idx]
        video = episode.read_frames(start, start + self.span, self.frame_skip)
        if self.size is not None:
            video = resize_video(video, self.size)
        item = {
            "video": torch.from_numpy(np.ascontiguousarray(video)),
            "source": store_idx,
            "episode": episode_idx,
            "start": start,
        }
        if self.action_names is not None:
            raw = episode.read_actions(start, start + self.span - 1)
            if self.frame_skip > 1:
                raw = raw.reshape(self.clip_len - 1, self.frame_skip, -1).mean(axis=1)
            item["actions"] = torch.from_numpy(raw.astype(np.float32, copy=False))
        if self.position_names is not None:
            item["positions"] = torch.from_numpy(self._positions(store_idx, episode_idx)[start : start + self.span : self.frame_skip])
        return item
