"""Frames to pictures and videos on disk (PNG, GIF, MP4), written atomically."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw

from genie_robot.errors import InputError
from genie_robot.io import atomic_path

VIDEO_SUFFIXES = (".gif", ".mp4")


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Float frames in [0, 1] (any leading axes) -> uint8 numpy."""
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def upscale(frames: np.ndarray, frame_height: int, min_height: int = 128) -> np.ndarray:
    """Nearest-neighbour upscaling so each frame is at least `min_height` pixels tall."""
    factor = max(1, min_height // frame_height)
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image")
    try:
        image = iio.imread(path)
    except Exception as exc:  # imageio raises many types for undecodable files
        raise InputError(f"{path}: cannot decode as an image ({exc}); give a PNG or JPEG") from None
    return image[0] if image.ndim == 4 else image  # first frame of an animated image


def label_strip(labels: list[str], column_width: int, height: int = 14) -> np.ndarray:
    """A white strip with one black label per column (PIL's built-in font)."""
    strip = Image.new("RGB", (column_width * len(labels), height), "white")
    draw = ImageDraw.Draw(strip)
    for i, label in enumerate(labels):
        draw.text((i * column_width + 3, 1), label, fill="black")
    return np.asarray(strip)


def labelled_columns(columns: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Videos [T, H, W, 3] side by side under a label row -> [T, H', W * n, 3], upscaled to view."""
    video = upscale(np.concatenate(columns, axis=2), columns[0].shape[1])
    strip = label_strip(labels, video.shape[2] // len(columns))
    return np.concatenate([np.broadcast_to(strip, (len(video), *strip.shape)), video], axis=1)


def check_video_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{path}: write videos as {' or '.join(VIDEO_SUFFIXES)} (got {path.suffix or 'no suffix'!r})")
    return path


def write_image(path: str | Path, image_HWC: np.ndarray) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image_HWC, extension=path.suffix or ".png")
    return path


def write_video(path: str | Path, frames_THWC: np.ndarray, fps: float = 10.0) -> Path:
    """GIF (looping) or MP4 (H.264 through imageio-ffmpeg; sides padded to a multiple of 16).
    The GIF writer merges identical neighbouring frames into one longer frame (playing time is
    kept, the frame count is not); MP4 keeps every frame."""
    path = check_video_path(path)
    frames_THWC = np.asarray(frames_THWC, dtype=np.uint8)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            iio.imwrite(tmp, frames_THWC, extension=".gif", duration=round(1000 / fps), loop=0)
        else:
            _, h, w, _ = frames_THWC.shape
            pad = ((0, 0), (0, -h % 16), (0, -w % 16), (0, 0))
            _write_mp4(tmp, np.pad(frames_THWC, pad), fps)
    return path


def encode_video(path: str | Path, frames_THWC: np.ndarray, fps: float, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", options: dict[str, str] | None = None) -> Path:
    """Encode uint8 [T, H, W, 3] with PyAV at exactly these settings (container from the
    suffix), atomically. For files other programs read back frame by frame: the LeRobot
    export, test fixtures."""
    from fractions import Fraction

    from genie_robot.extras import require

    av = require("av")
    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames_THWC.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = options or {}
        for frame in frames_THWC:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _write_mp4(path: Path, frames_THWC: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio2  # the ffmpeg plugin lives behind the v2 API

    with iio2.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=16) as writer:
        for frame in frames_THWC:
            writer.append_data(frame)
