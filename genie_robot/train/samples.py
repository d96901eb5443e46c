"""Sample images written during training: what each stage currently produces."""
from __future__ import annotations

import numpy as np
import torch

from genie_robot.media import to_uint8, upscale


def _row(frames_THWC: torch.Tensor) -> np.ndarray:
    frames = frames_THWC.float()
    if frames.max() > 1.5:
        frames = frames / 255.0
    return np.concatenate(list(to_uint8(frames)), axis=1)


def sample_image(batch: dict, preview: dict, tokenizer=None, max_frames: int = 8) -> np.ndarray | None:
    """Two rows from the stage's `StepOutput.preview`, up to `max_frames` frames of the batch's
    first clip: what the stage should produce over what it produced (tokenizer: frames and
    reconstructions; lam: next frames and their predictions from the latent actions; dynamics:
    next frames and one-step token predictions, decoded). None for a stage without pictures."""
    if "output_tokens" in preview:
        with torch.no_grad():
            decoded = tokenizer.decode(preview["output_tokens"][:1])[0]
        target, output = batch["video"][0][1:], decoded[1:]
    elif "output" in preview:
        target, output = preview["target"], preview["output"]
        # Single-frame clips (the per-frame tokenizer): show the batch's frames instead.
        target, output = (target[:, 0], output[:, 0]) if target.shape[1] == 1 else (target[0], output[0])
    else:
        return None
    rows = [target[:max_frames], output[:max_frames]]
    return upscale(np.concatenate([_row(r) for r in rows], axis=0), target.shape[1], min_height=256)
