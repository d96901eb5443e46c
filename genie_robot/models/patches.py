"""Pixels <-> patch tokens, shared by the tokenizer and the latent action model."""
from __future__ import annotations

import torch
from einops import rearrange


def to_unit(video_BTHWC: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]; float input is assumed to be in [0, 1] already."""
    return video_BTHWC.float() / 255.0 if video_BTHWC.dtype == torch.uint8 else video_BTHWC.float()


def patchify(video_BTHWC: torch.Tensor, patch: int) -> torch.Tensor:
    return rearrange(video_BTHWC, "b t (h p1) (w p2) c -> b t (h w) (p1 p2 c)", p1=patch, p2=patch)


def unpatchify(patches_BTSP: torch.Tensor, patch: int, height: int) -> torch.Tensor:
    return rearrange(patches_BTSP, "b t (h w) (p1 p2 c) -> b t (h p1) (w p2) c",
                     h=height // patch, p1=patch, p2=patch)
