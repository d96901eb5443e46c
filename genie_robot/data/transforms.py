"""Frame resizing shared by the clip sampler and every reader.

Policy: centre-crop to the target aspect ratio, then area-average down (or bilinear up).
Cropping keeps pixels square, which matters for a patch-based tokenizer; RT-1's 256x320
becomes 256x256 before resizing to a square model resolution."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genie_robot.errors import InputError


def as_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise InputError(f"resolution must be positive, got {size}")
    return height, width


def to_rgb(frames_C: np.ndarray) -> np.ndarray:
    """[..., C] with C = 1 (grey), 3 (RGB) or 4 (RGBA) -> [..., 3]: grey is repeated, alpha dropped."""
    channels = frames_C.shape[-1]
    if channels not in (1, 3, 4):
        raise InputError(f"expected 1, 3 or 4 colour channels (grey, RGB, RGBA), got {channels}")
    return frames_C.repeat(3, axis=-1) if channels == 1 else frames_C[..., :3]


def center_crop_box(height: int, width: int, target: tuple[int, int]) -> tuple[slice, slice]:
    """Rows/cols of the largest centred window with the target's aspect ratio."""
    th, tw = target
    if height * tw > width * th:  # too tall
        new_h = round(width * th / tw)
        top = (height - new_h) // 2
        return slice(top, top + new_h), slice(0, width)
    new_w = round(height * tw / th)
    left = (width - new_w) // 2
    return slice(0, height), slice(left, left + new_w)


def resize_video(video_THWC: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """uint8 [T, H, W, C] -> uint8 [T, h, w, C] (crop to aspect, then resize)."""
    target = as_size(size)
    t, h, w, c = video_THWC.shape
    if (h, w) == target:
        return video_THWC
    rows, cols = center_crop_box(h, w, target)
    video_TCHW = torch.from_numpy(np.ascontiguousarray(video_THWC[:, rows, cols])).permute(0, 3, 1, 2).float()
    shrinking = video_TCHW.shape[-2] >= target[0]
    out = F.interpolate(video_TCHW, size=target, mode="area" if shrinking else "bilinear", align_corners=None if shrinking else False)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def resize_masks(masks_THW: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Object-id masks [T, H, W] cropped as `resize_video` crops, then nearest-neighbour
    resized: ids are labels, and averaging two of them would invent a third."""
    target = as_size(size)
    if masks_THW.shape[1:] == target:
        return masks_THW
    rows, cols = center_crop_box(*masks_THW.shape[1:], target)
    masks = torch.from_numpy(np.ascontiguousarray(masks_THW[:, rows, cols]))[:, None].float()
    return F.interpolate(masks, size=target, mode="nearest-exact")[:, 0].to(torch.uint8).numpy()
