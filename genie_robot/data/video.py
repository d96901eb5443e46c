"""Video files (mp4, webm, gif, anything FFmpeg reads; decoded with PyAV) -> episode store.

One episode per file, or consecutive clips of --clip-frames frames (use clips for long
videos: an episode is held in memory at the stored resolution before it is written). With
--fps, frames are resampled by presentation time (each tick takes the latest frame at or
before it); without it every frame is kept and the stream's own rate is recorded. Videos
carry no actions."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from genie_robot.data.convert import Converted, check_size, cut, resample, resize_stream
from genie_robot.errors import InputError
from genie_robot.extras import require


def _undecodable(path: Path, exc: Exception) -> InputError:
    return InputError(f"{path}: cannot decode as video ({type(exc).__name__}: {exc}); "
                      "check that the file is a complete mp4/webm/gif (try playing it), or re-download it")


class VideoReader:
    """Opens every file on construction, so a bad one fails before any output is created."""

    def __init__(self, files, size: int = 64, fps: float | None = None, clip_frames: int | None = None):
        av = require("av")

        self.files = [Path(f) for f in files]
        if not self.files:
            raise InputError("no video files given")
        self.size, self.fps, self.clip_frames = check_size(size), fps, clip_frames
        for path in self.files:
            if not path.is_file():
                raise InputError(f"{path}: no such video file")
            try:
                with av.open(str(path)) as container:
                    if not container.streams.video:
                        raise InputError(f"{path}: has no video stream (streams: {[s.type for s in container.streams]})")
            except av.FFmpegError as exc:
                raise _undecodable(path, exc) from None

    def count(self, done: set[str]) -> int | None:
        return None if self.clip_frames else sum(str(f.resolve()) not in done for f in self.files)

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        for path in self.files:
            origin = str(path.resolve())
            if self.clip_frames is None and origin in done:
                continue
            rate, frames = self._decode(path)
            fps = self.fps or rate
            written = 0
            for index, clip in enumerate(cut(frames, self.clip_frames)):
                clip_origin = origin if self.clip_frames is None else f"{origin}#{index}"
                written += 1
                if clip_origin not in done:
                    yield Converted(np.stack(clip), attrs={"source": "video", "fps": fps, "language": "",
                                                           "origin": clip_origin})
            if not written:
                raise InputError(f"{path}: fewer than 2 frames decoded{' at --fps ' + str(self.fps) if self.fps else ''}; "
                                 "an episode needs at least two")

    def _decode(self, path: Path) -> tuple[float | None, Iterator[np.ndarray]]:
        """(stream frame rate, resized frames one by one)."""
        import av

        container = av.open(str(path))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else None

        def stamped():
            try:
                for index, frame in enumerate(container.decode(stream)):
                    # GIF and some containers lack timestamps: fall back to the nominal rate.
                    time_s = frame.time if frame.time is not None else index / (rate or 1.0)
                    yield time_s, frame
            except av.FFmpegError as exc:
                raise _undecodable(path, exc) from None
            finally:
                container.close()

        rgb = ((frame.to_ndarray(format="rgb24"), None) for _, frame in resample(stamped(), self.fps))
        return rate, (frame for frame, _ in resize_stream(rgb, self.size))
