"""Dynamics over change tokens: the MaskGIT model of Genie, predicting the change tokenizer's few
tokens of x_t+1 (models/change_tokenizer.py) instead of the video tokenizer's 256.

Each frame is one slot of the token grid (4x4 at 64x64), holding, at every position: a CNN
embedding of the frame x_t (the tokenizer's tokens are changes, so the scene itself must come
from the pixels), the change tokens that led into x_t, the latent action a_t, and the change
tokens of x_t+1, partly masked in training and filled by MaskGIT in generation. Attention is
spatial within a slot and causal over slots, as in the video dynamics, so slot t's logits see
frames <= t and actions <= t only. The training objective is the video dynamics': a mask rate
per frame by the cosine schedule, cross-entropy on masked tokens.

It trains on the tokenizer's reading of each clip (frames x^ and tokens as a rollout makes
them, from the clip's first real frame), so what it sees in training is what it sees when
it generates from its own frames."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from genie_robot.errors import ConfigError
from genie_robot.models.change_tokenizer import channels_first
from genie_robot.models.config import ModelConfig
from genie_robot.models.stage import Stage, StepOutput
from genie_robot.nn import STTransformer
from genie_robot.sampling import SCHEDULES, SamplingConfig, maskgit_decode


@dataclass
class ChangeDynamicsConfig(ModelConfig):
    kind: ClassVar[str] = "change_dynamics"
    presets: ClassVar[dict] = {
        "tiny": dict(image_size=16, grid=2, codebook_size=64, num_actions=8, dim=32, layers=1, heads=2, max_frames=16),
        "small": dict(image_size=64, grid=4, codebook_size=1000, num_actions=8, dim=128, layers=4, heads=4, max_frames=16),
        # At the video dynamics' larger scales, for GPUs; never trained here.
        "base": dict(image_size=64, grid=4, codebook_size=1000, num_actions=8, dim=512, layers=12, heads=8, max_frames=16),
        "coinrun": dict(image_size=64, grid=4, codebook_size=1000, num_actions=6, dim=512, layers=12, heads=8, max_frames=16),
        "paper": dict(image_size=160, grid=10, codebook_size=1000, num_actions=8, dim=1024, layers=24, heads=16, max_frames=16),
    }
    image_size: int = 64
    grid: int = 4  # the change tokenizer's tokens per side
    codebook_size: int = 1000
    num_actions: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4
    max_frames: int = 16  # slots (frames with their next change) in the temporal window
    qk_norm: bool = True

    def validate(self) -> None:
        super().validate()
        scale = self.image_size // self.grid
        if self.image_size % self.grid or scale & (scale - 1) or scale < 2:
            raise ConfigError(f"change_dynamics config: image_size / grid must be a power of two, got {self.image_size} / {self.grid}")
        if self.dim % 2:
            raise ConfigError(f"change_dynamics config: dim must be even, got {self.dim}")

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    @property
    def none_id(self) -> int:
        """What leads into a window's first frame: no change is known."""
        return self.codebook_size


class ChangeDynamics(nn.Module, Stage):
    frozen_stages = ("change_tokenizer", "lam")
    pure_training_inputs = True  # the tokenizer's reading of a clip costs as much as a step: read each clip once

    @classmethod
    def config_for_run(cls, config: ChangeDynamicsConfig, frozen: dict, dataset) -> ChangeDynamicsConfig:
        """The token grid, vocabulary and resolution of the run's change tokenizer, the actions of its LAM."""
        tokenizer = frozen["change_tokenizer"].config
        return dataclasses.replace(config, image_size=tokenizer.image_size, grid=tokenizer.grid,
                                   codebook_size=tokenizer.codebook_size, num_actions=frozen["lam"].config.num_actions)

    @classmethod
    def clip_size(cls, config, frozen: dict) -> int:
        return frozen["change_tokenizer"].config.image_size

    def __init__(self, config: ChangeDynamicsConfig):
        super().__init__()
        self.config = c = config
        half = c.dim // 2
        steps = (c.image_size // c.grid).bit_length() - 1  # stride-2 convolutions down to the grid
        widths = [3] + [half] * (steps - 1) + [c.dim]
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.GELU()]
        self.frame_embed = nn.Sequential(*layers[:-1])
        self.change_in_embed = nn.Embedding(c.codebook_size + 1, c.dim)  # + none_id
        self.change_out_embed = nn.Embedding(c.codebook_size + 1, c.dim)  # + mask_id
        self.action_embed = nn.Embedding(c.num_actions, c.dim)
        self.transformer = STTransformer(c.dim, c.layers, c.heads, c.max_frames, c.grid**2, c.qk_norm)
        self.head = nn.Linear(c.dim, c.codebook_size)

    def logits(self, frames_BTHWC: torch.Tensor, change_in_BTgg: torch.Tensor, change_out_BTgg: torch.Tensor,
               actions_BT: torch.Tensor) -> torch.Tensor:
        """Frames x_t, the changes that led into them (none_id for a window's first), the changes
        out of them (mask_id where unknown) and actions a_t -> logits of the changes out [B, T, g, g, V]."""
        c = self.config
        B, T = frames_BTHWC.shape[:2]
        if tuple(frames_BTHWC.shape[2:]) != (c.image_size, c.image_size, 3):
            raise ValueError(f"change dynamics expects frames of {c.image_size}x{c.image_size}x3, got {tuple(frames_BTHWC.shape[2:])}")
        grids = (B, T, c.grid, c.grid)
        if actions_BT.shape != (B, T) or change_in_BTgg.shape != grids or change_out_BTgg.shape != grids:
            raise ValueError(f"need one action and one {c.grid}x{c.grid} change grid in and out per frame: frames "
                             f"{tuple(frames_BTHWC.shape)}, actions {tuple(actions_BT.shape)}, changes "
                             f"{tuple(change_in_BTgg.shape)} / {tuple(change_out_BTgg.shape)}")
        if actions_BT.numel() and (actions_BT.min() < 0 or actions_BT.max() >= c.num_actions):
            raise ValueError(f"latent actions must lie in 0..{c.num_actions - 1}, got {actions_BT.min().item()}..{actions_BT.max().item()}")
        scene_NDgg = self.frame_embed(channels_first(rearrange(frames_BTHWC, "b t h w c -> (b t) h w c")))
        scene_BTSD = rearrange(scene_NDgg, "(b t) d h w -> b t (h w) d", b=B)
        changes_BTSD = rearrange(self.change_in_embed(change_in_BTgg) + self.change_out_embed(change_out_BTgg),
                                 "b t h w d -> b t (h w) d")
        x_BTSD = scene_BTSD + changes_BTSD + self.action_embed(actions_BT)[:, :, None]
        return rearrange(self.head(self.transformer(x_BTSD)), "b t (h w) v -> b t h w v", h=c.grid)

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        """The change tokenizer's reading of each clip (its frames and tokens), with the LAM's actions."""
        video = batch["video"]
        actions = batch["latents"] if "latents" in batch else frozen["lam"].infer_actions(video)
        frames, changes = frozen["change_tokenizer"].read(video, actions)
        return {"frames": frames[:, :-1], "changes": changes, "actions": actions}

    def forward(self, batch: dict) -> StepOutput:
        """MaskGIT's objective on the changes out of each frame: batch["frames"] [B, T, H, W, 3],
        batch["changes"] [B, T, g, g] (out of each frame), batch["actions"] [B, T]."""
        c = self.config
        frames, changes, actions = batch["frames"], batch["changes"], batch["actions"]
        B, T = changes.shape[:2]
        rate_BT11 = SCHEDULES["cosine"](torch.rand(B, T, 1, 1, device=changes.device))
        mask = torch.rand(changes.shape, device=changes.device) < rate_BT11
        change_in = torch.cat([torch.full_like(changes[:, :1], c.none_id), changes[:, :-1]], dim=1)
        logits = self.logits(frames, change_in, changes.masked_fill(mask, c.mask_id), actions)
        nll = F.cross_entropy(rearrange(logits, "b t h w v -> b v t h w"), changes, reduction="none")
        loss = (nll * mask).sum() / mask.sum().clamp_min(1)
        with torch.no_grad():
            hit = (logits.argmax(-1) == changes).float()
            metrics = {"loss": loss.detach(), "token_accuracy": hit[mask].mean()}
        return StepOutput(loss, metrics)


@torch.no_grad()
def next_changes(dynamics: ChangeDynamics, frames_BTHWC: torch.Tensor, changes_in_BTgg: torch.Tensor,
                 actions_BT: torch.Tensor, sampling: SamplingConfig, generators, fsq=None) -> torch.Tensor:
    """The change tokens out of the last frame [B, g, g], by MaskGIT; the earlier frames' changes
    out are the next frames' changes in."""
    c = dynamics.config
    blank_B1gg = torch.full_like(changes_in_BTgg[:, :1], c.mask_id)
    known_BTgg = torch.cat([changes_in_BTgg[:, 1:], blank_B1gg], dim=1)

    def logits_fn(last_BN: torch.Tensor) -> torch.Tensor:
        out_BTgg = torch.cat([known_BTgg[:, :-1], rearrange(last_BN, "b (h w) -> b 1 h w", h=c.grid)], dim=1)
        return rearrange(dynamics.logits(frames_BTHWC, changes_in_BTgg, out_BTgg, actions_BT)[:, -1], "b h w v -> b (h w) v")

    last_BN = maskgit_decode(logits_fn, rearrange(blank_B1gg, "b 1 h w -> b (h w)"), c.mask_id, sampling, generators, fsq)
    return rearrange(last_BN, "b (h w) -> b h w", h=c.grid)
