"""Validation of what users hand the models: frames and latent actions. One place, so every
entry point (library, CLI, ROS, planner) accepts and refuses the same inputs."""
from __future__ import annotations

import numpy as np

from genie_robot.data.transforms import resize_video, to_rgb
from genie_robot.errors import InputError


def as_video(frames, image_size: int, what: str = "prompt") -> np.ndarray:
    """Validate user frames into uint8 [T, S, S, 3].

    Accepts one frame [H, W, C] or a video [T, H, W, C] of uint8, RGB (an alpha channel is
    dropped, grey is repeated). Other sizes are centre-cropped to square and downscaled;
    frames smaller than the model's resolution are refused (upscaling invents detail)."""
    frames = np.asarray(frames)
    if frames.size == 0:
        raise InputError(f"{what} is empty; give at least one frame")
    if frames.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 RGB frames (0..255), got dtype {frames.dtype}")
    if frames.ndim == 2 or (frames.ndim == 3 and frames.shape[-1] not in (1, 3, 4)):
        frames = frames[..., None]  # grey without a channel axis
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise InputError(f"{what} must be [H, W, 3] or [T, H, W, 3] RGB, got shape {frames.shape}")
    frames = to_rgb(frames)
    _, h, w, _ = frames.shape
    if min(h, w) < image_size:
        raise InputError(f"{what} frames are {h}x{w}, smaller than the model's {image_size}x{image_size}; "
                         f"give frames at least {image_size} px on the shorter side")
    return resize_video(frames, image_size)


def check_actions(actions, num_actions: int) -> np.ndarray:
    actions = np.asarray(actions)
    if actions.dtype.kind not in "iu":
        raise InputError(f"latent actions are integers 0..{num_actions - 1}, got {actions.dtype} values {actions.ravel()[:4]}")
    if actions.size and (actions.min() < 0 or actions.max() >= num_actions):
        raise InputError(f"latent action out of range: {actions.ravel().tolist()[:8]}; this model has actions 0..{num_actions - 1}")
    return actions.astype(np.int64)
