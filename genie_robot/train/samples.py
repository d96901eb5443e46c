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


def sample_image(stage: str, batch: dict, metrics: dict, tokenizer=None, max_frames: int = 8) -> np.ndarray:
    """Rows per stage, first clip of the batch, up to `max_frames` frames:
    tokenizer: ground truth / reconstruction; lam: next frame / prediction from the latent
    action; dynamics: next frame / one-step prediction (argmax tokens, decoded)."""
    video = batch["video"][0]
    if stage == "tokenizer":
        recon = metrics["_recon"][0]
        if video.shape[0] == 1:  # single-frame clips: show the batch's frames instead
            video, recon = batch["video"][:, 0], metrics["_recon"][:, 0]
        rows = [video[:max_frames], recon[:max_frames]]
    elif stage == "lam":
        rows = [video[1 : max_frames + 1], metrics["_pred"][0][:max_frames]]
    else:
        with torch.no_grad():
            predicted_ids = metrics["_logits"][:1].argmax(-1)
            decoded = tokenizer.decode(predicted_ids)[0]
        rows = [video[1 : max_frames + 1], decoded[1 : max_frames + 1]]
    return upscale(np.concatenate([_row(r) for r in rows], axis=0), video.shape[1], min_height=256)
