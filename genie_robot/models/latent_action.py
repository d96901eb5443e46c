"""Latent action model (LAM): learns a small discrete action vocabulary from unlabelled video.

The encoder sees x_1..t+1 (causal in time) and emits one continuous action per transition,
quantized to one of `num_actions` codes. The decoder sees x_1..t plus a_t (added as an
embedding to every token of frame t) and predicts x_t+1; the tiny codebook is the only path
for information about x_t+1, which forces it to carry "what changed" (Genie, section 2.1).
Works on raw pixels (better than on tokens, paper Table 2).

In the paper the decoder also sees x_1..t-1. In robot video motions last several frames, so a
decoder with history predicts "keep moving as before" and the action code is left to carry
almost nothing. Our presets decode each transition from x_t alone (`dec_temporal=False`):
where the arm goes next then has to come through the action. Their encoder also reads each
transition on its own (`enc_temporal=False`: x_t+1 and its change since x_t say all there is
about the move), so the LAM trains on 2-frame clips and infers the same codes in any window.

Where the training stores record the robot's commands, `command_weight` > 0 adds a loss that
predicts each transition's command from its latent action (a linear read-out of the quantized
code), as LAOM (Nikulin et al., ICML 2025) supervises latent actions with a few labels: the
codes are pulled toward the motions the robot commands rather than any change the video shows."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from genie_robot.errors import ConfigError, InputError
from genie_robot.models.config import PixelModelConfig
from genie_robot.models.patches import patchify, to_unit, unpatchify
from genie_robot.models.stage import Stage, StepOutput
from genie_robot.nn import STTransformer, VectorQuantizer


@dataclass
class LatentActionConfig(PixelModelConfig):
    kind: ClassVar[str] = "lam"
    may_be_zero: ClassVar[tuple[str, ...]] = ("command_dim",)
    presets: ClassVar[dict] = {
        "tiny": dict(image_size=16, patch=8, dim=32, enc_layers=1, dec_layers=1, heads=2, num_actions=8, code_dim=8, max_frames=16,
                     enc_temporal=False, dec_temporal=False),
        "small": dict(image_size=64, patch=8, dim=128, enc_layers=3, dec_layers=3, heads=4, num_actions=8, code_dim=32, max_frames=16,
                      enc_temporal=False, dec_temporal=False),
        "base": dict(image_size=64, patch=8, dim=512, enc_layers=8, dec_layers=8, heads=8, num_actions=8, code_dim=32, max_frames=16,
                     enc_temporal=False, dec_temporal=False),
        "coinrun": dict(image_size=64, patch=16, dim=512, enc_layers=8, dec_layers=8, heads=8, num_actions=6, code_dim=32,
                        max_frames=16),
        "paper": dict(image_size=160, patch=16, dim=1024, enc_layers=20, dec_layers=20, heads=16, num_actions=8, code_dim=32,
                      max_frames=16),
    }
    image_size: int = 64
    patch: int = 8
    dim: int = 128
    enc_layers: int = 3
    dec_layers: int = 3
    heads: int = 4
    num_actions: int = 8
    code_dim: int = 32
    max_frames: int = 16
    beta: float = 0.25
    qk_norm: bool = True
    enc_temporal: bool = True  # False: a_t read from x_t+1 and x_t+1 - x_t alone
    dec_temporal: bool = True  # False: the decoder predicts x_t+1 from x_t and a_t alone
    command_weight: float = 0.0  # weight of predicting the recorded command from the code (0: video alone)
    command_dim: int = 0  # recorded command values per transition; set from the data when command_weight > 0

    def validate(self) -> None:
        super().validate()
        if self.command_weight < 0:
            raise ConfigError(f"lam config: command_weight must be >= 0, got {self.command_weight}")


class LatentActionModel(nn.Module, Stage):
    @classmethod
    def uses_actions(cls, config: LatentActionConfig) -> bool:
        return config.command_weight > 0

    @classmethod
    def config_for_run(cls, config: LatentActionConfig, frozen: dict, dataset) -> LatentActionConfig:
        """With command_weight > 0, the command length of the training stores, which must record one."""
        if not config.command_weight:
            return config
        if not dataset.action_names:
            raise InputError("train lam --command-weight learns from recorded robot commands, but the training stores "
                             "carry none (or differing layouts); leave --command-weight out, or train on stores of "
                             "`genie-robot data mujoco` or converted robot data with one action layout")
        return dataclasses.replace(config, command_dim=len(dataset.action_names))

    def __init__(self, config: LatentActionConfig):
        super().__init__()
        self.config = c = config
        patch_dim = c.patch * c.patch * 3
        # Each patch enters with its change since the previous frame: the change is what an
        # action is, and it is a few pixels of a small arm that attention alone finds late.
        self.embed_enc = nn.Linear(2 * patch_dim, c.dim)
        # A learned query token per frame reads the action by attention: mean-pooling the
        # patches washes out a small moving arm and collapses every step onto one code.
        self.action_query = nn.Parameter(torch.randn(c.dim) * 0.02)
        self.encoder = STTransformer(c.dim, c.enc_layers, c.heads, c.max_frames, c.tokens_per_frame + 1, c.qk_norm,
                                     temporal=c.enc_temporal)
        self.to_action = nn.Linear(c.dim, c.code_dim)
        self.quantizer = VectorQuantizer(c.num_actions, c.code_dim, c.beta)
        self.embed_dec = nn.Linear(patch_dim, c.dim)
        self.action_to_dec = nn.Linear(c.code_dim, c.dim)
        self.decoder = STTransformer(c.dim, c.dec_layers, c.heads, c.max_frames, c.tokens_per_frame, c.qk_norm,
                                     temporal=c.dec_temporal)
        self.to_pixels = nn.Linear(c.dim, patch_dim)
        nn.init.zeros_(self.to_pixels.weight)  # start as "copy the last frame"
        nn.init.zeros_(self.to_pixels.bias)
        if c.command_weight and not c.command_dim:
            raise ConfigError("lam config: command_weight > 0 needs command_dim, the recorded command's length "
                              "(train sets it from the stores)")
        self.to_command = nn.Linear(c.code_dim, c.command_dim) if c.command_weight else None

    def _check(self, video_BTHWC: torch.Tensor) -> None:
        c = self.config
        if tuple(video_BTHWC.shape[2:]) != (c.image_size, c.image_size, 3) or video_BTHWC.shape[1] < 2:
            raise ValueError(
                f"latent action model expects >= 2 frames of {c.image_size}x{c.image_size}x3, "
                f"got {tuple(video_BTHWC.shape[1:])}"
            )

    def _actions(self, pixels_BTSP: torch.Tensor):
        """Continuous -> quantized actions for transitions t -> t+1, from the query of step t+1."""
        change_BTSP = torch.cat([torch.zeros_like(pixels_BTSP[:, :1]), pixels_BTSP.diff(dim=1)], dim=1)
        # A per-transition encoder reads each frame alone, so the first frame, whose query is
        # never used, is left out (a third of the LAM's step); a temporal one needs it as context.
        skip = 0 if self.config.enc_temporal else 1
        x_BTSD = self.embed_enc(torch.cat([pixels_BTSP, change_BTSP], dim=-1)[:, skip:])
        query_BT1D = self.action_query.expand(*x_BTSD.shape[:2], 1, -1)
        h_BTSD = self.encoder(torch.cat([x_BTSD, query_BT1D], dim=2))
        return self.quantizer(self.to_action(h_BTSD[:, 1 - skip:, -1]))

    @torch.no_grad()
    def infer_actions(self, video_BTHWC: torch.Tensor) -> torch.Tensor:
        """Frames [B, T, H, W, 3] -> latent action ids [B, T-1]; ids[:, t] moved frame t to t+1."""
        self._check(video_BTHWC)
        _, ids_BT, _, _ = self._actions(patchify(to_unit(video_BTHWC), self.config.patch))
        return ids_BT

    @torch.no_grad()
    def infer_actions_windows(self, video_BTHWC: torch.Tensor) -> torch.Tensor:
        """`infer_actions` for videos of any length: windows of the model's length that share
        one frame, so every transition is read once -> ids [B, T-1]."""
        window = self.config.max_frames
        return torch.cat([self.infer_actions(video_BTHWC[:, s : s + window])
                          for s in range(0, video_BTHWC.shape[1] - 1, window - 1)], dim=1)

    def predict_next(self, video_BTHWC: torch.Tensor, action_codes_BTC: torch.Tensor) -> torch.Tensor:
        """x_1..T-1 and action codes a_1..T-1 -> predicted x_2..T (about [0, 1], unclamped).

        The decoder predicts the change from x_t: copying the frame is free from the first
        step, so the loss is about what moved, which only the action can explain."""
        c = self.config
        context_BTSP = patchify(to_unit(video_BTHWC[:, :-1]), c.patch)
        x_BTSD = self.embed_dec(context_BTSP) + self.action_to_dec(action_codes_BTC)[:, :, None]
        change_BTSP = self.to_pixels(self.decoder(x_BTSD))
        return unpatchify(context_BTSP + change_BTSP, c.patch, c.image_size)

    def forward(self, batch: dict) -> StepOutput:
        video = batch["video"]
        self._check(video)
        pixels_BTSP = patchify(to_unit(video), self.config.patch)
        codes_BTC, ids_BT, vq_loss, vq_metrics = self._actions(pixels_BTSP)
        pred_BTHWC = self.predict_next(video, codes_BTC)
        target = to_unit(video[:, 1:])
        recon_loss = F.mse_loss(pred_BTHWC, target)
        # Relative to copying the last frame: a few moving arm pixels give an MSE ~1e-3 that
        # the commitment loss (~1e-1) would drown, pulling every step onto one code.
        copy_mse = F.mse_loss(to_unit(video[:, :-1]), target).clamp_min(1e-6)
        loss = recon_loss / copy_mse + vq_loss
        metrics = {"recon_mse": recon_loss.detach(), **vq_metrics}
        if self.to_command is not None:
            # Relative to the commands' variance, like the reconstruction to copying: a share
            # of the command left unexplained, whatever its units.
            commands_BTA = batch["actions"].float()
            command_mse = F.mse_loss(self.to_command(codes_BTC), commands_BTA)
            unexplained = command_mse / commands_BTA.var().clamp_min(1e-6)
            loss = loss + self.config.command_weight * unexplained
            metrics["command_r2"] = 1.0 - unexplained.detach()
        return StepOutput(loss, {"loss": loss.detach(), **metrics}, {"target": target, "output": pred_BTHWC.detach()})
