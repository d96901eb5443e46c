"""State probe: a frame -> where the hand and each object are, in metres.

Planning toward a goal frame needs a cost that ranks imagined outcomes as the world would.
Whole-frame costs do not (the arm's pose dominates a frame), and colour centroids are coarse:
the arm's centroid only loosely follows the hand. The probe is a small convolutional regressor
trained as an optional fifth stage of a run (`genie-robot train probe`) on stores that record
state (`genie-robot data mujoco`): every frame against its recorded positions (the hand's, each
rigid body's centre, each soft body's mean node; `genie_robot.data.store.state_positions`). It
reads imagined frames and the goal frame alike, so the planner compares positions rather than
pixels (docs/planning.md). Two coordinate channels let the convolutions tell
where in the frame they are, which a position regressor needs.
It is saved beside the models as RUN/probe/ (config.json + model.safetensors)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from genie_robot.errors import ConfigError, InputError
from genie_robot.models.config import ModelConfig
from genie_robot.models.inputs import as_video
from genie_robot.models.stage import Stage, StepOutput

# Positions are regressed in decimetres: the workspace spans a few of them, so targets are of order 1.
UNIT = 0.1


@dataclass
class ProbeConfig(ModelConfig):
    kind: ClassVar[str] = "probe"
    presets: ClassVar[dict] = {
        "tiny": {"image_size": 16, "widths": [8, 16], "hidden": 32},
        "small": {"image_size": 64},
        "base": {"image_size": 64},
        "coinrun": {"image_size": 64},
        "paper": {"image_size": 160, "widths": [32, 64, 128, 128, 128]},
    }
    image_size: int = 64
    widths: list = field(default_factory=lambda: [32, 64, 128, 128])  # one stride-2 block each
    hidden: int = 256
    position_names: list = field(default_factory=list)  # the store's (hand first); filled from the data

    def validate(self) -> None:
        super().validate()
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ConfigError(f"probe config: widths must be positive channel counts, got {self.widths}")
        if self.image_size % 2 ** len(self.widths):
            raise ConfigError(f"probe config: image_size {self.image_size} must be divisible by 2^{len(self.widths)} "
                              f"(one halving per width)")


class StateProbe(nn.Module, Stage):
    needs_positions = True

    def __init__(self, config: ProbeConfig):
        super().__init__()
        if not config.position_names:
            raise ConfigError("probe config: position_names must name each position it predicts")
        self.config = c = config
        layers, channels = [], 5  # RGB + row and column coordinates
        for width in c.widths:
            groups = 8 if width % 8 == 0 else 1
            layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.GroupNorm(groups, width), nn.GELU(),
                       nn.Conv2d(width, width, 3, 1, 1), nn.GELU()]
            channels = width
        self.features = nn.Sequential(*layers)
        side = c.image_size // 2 ** len(c.widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, c.hidden), nn.GELU(),
                                  nn.Linear(c.hidden, 3 * len(c.position_names)))

    @classmethod
    def config_for_run(cls, config: ProbeConfig, frozen: dict, dataset) -> ProbeConfig:
        if not dataset.position_names:
            raise InputError("the probe learns from recorded positions, but the training stores have none (or their "
                             "state layouts differ); use episodes of `genie-robot data mujoco`")
        return dataclasses.replace(config, position_names=list(dataset.position_names))

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        return {"frames": rearrange(batch["video"], "b t h w c -> (b t) h w c"),
                "positions": rearrange(batch["positions"], "b t q xyz -> (b t) q xyz")}

    def forward(self, batch: dict) -> StepOutput:
        predicted_NQ3 = self.positions(batch["frames"])
        # Huber: an object knocked off the table keeps falling in the recording (metres below it),
        # where it is out of view; squared, such a frame would outweigh a batch.
        loss = F.smooth_l1_loss(predicted_NQ3 / UNIT, batch["positions"] / UNIT)
        error_cm = (predicted_NQ3.detach() - batch["positions"]).norm(dim=-1).mean() * 100
        return StepOutput(loss, {"loss": loss.detach(), "error_cm": error_cm})

    def positions(self, frames_NHWC: torch.Tensor) -> torch.Tensor:
        """uint8 frames [N, S, S, 3] -> positions [N, Q, 3] in metres."""
        x_NCHW = rearrange(frames_NHWC, "n h w c -> n c h w").float() / 255
        n, _, h, w = x_NCHW.shape
        rows_HW, cols_HW = torch.meshgrid(torch.linspace(-1, 1, h, device=x_NCHW.device),
                                          torch.linspace(-1, 1, w, device=x_NCHW.device), indexing="ij")
        coordinates_N2HW = torch.stack([rows_HW, cols_HW]).expand(n, 2, h, w)
        out_NF = self.head(self.features(torch.cat([x_NCHW, coordinates_N2HW], 1)))
        return rearrange(out_NF, "n (q xyz) -> n q xyz", xyz=3) * UNIT

    @torch.no_grad()
    def predict(self, frames, batch: int = 256) -> dict[str, np.ndarray]:
        """Positions by name (float64 [N, 3], metres) of uint8 frames [N, H, W, 3] (or one frame;
        other sizes are resized to the probe's)."""
        frames_NHWC = as_video(frames, self.config.image_size, "probe frames")
        device = next(self.parameters()).device
        out_NQ3 = np.concatenate([self.positions(torch.from_numpy(np.ascontiguousarray(frames_NHWC[i:i + batch])).to(device))
                                  .float().cpu().numpy() for i in range(0, len(frames_NHWC), batch)])
        return {name: out_NQ3[:, q].astype(np.float64) for q, name in enumerate(self.config.position_names)}
