"""Action adapter: arm commands <-> the world model's latent actions.

The LAM learns its own small action vocabulary from video; a robot speaks in commands
(end-effector velocity + gripper, in [-1, 1]). The adapter is fit on episodes where both are
known (commands recorded, latent actions inferred by the LAM from the video):
  to_latent:   command -> latent action, a small MLP classifier (cross-entropy);
  to_commands: latent action -> command, the mean command of each latent action (the
               least-squares answer, fit in closed form).
It is saved beside the models as RUN/adapter/ (config.json + model.safetensors)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genie_robot.errors import ConfigError, InputError
from genie_robot.models.config import ModelConfig


@dataclass
class AdapterConfig(ModelConfig):
    kind: ClassVar[str] = "adapter"
    presets: ClassVar[dict] = {"default": {}}
    num_actions: int = 8
    hidden: int = 64
    command_names: list = field(default_factory=list)  # the store's action_names of the commands

    def validate(self) -> None:
        super().validate()
        if not self.command_names:
            raise ConfigError("adapter config: command_names must name each arm command dimension")

    @property
    def command_dim(self) -> int:
        return len(self.command_names)


class ActionAdapter(nn.Module):
    def __init__(self, config: AdapterConfig):
        super().__init__()
        self.config = c = config
        self.classifier = nn.Sequential(
            nn.Linear(c.command_dim, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, c.num_actions),
        )
        self.register_buffer("latent_commands", torch.zeros(c.num_actions, c.command_dim))
        # How many fitting transitions each latent action had: 0 marks one the LAM never used.
        self.register_buffer("latent_counts", torch.zeros(c.num_actions))

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu") -> "ActionAdapter":
        from genie_robot.train.checkpoint import load_run_models

        return load_run_models(run_dir, ["adapter"], "the action adapter", device)["adapter"]

    def check_commands(self, commands) -> np.ndarray:
        """Commands as float32 [N, command_dim] within [-1, 1], or InputError naming the fix."""
        commands = np.asarray(commands, dtype=np.float32)
        if commands.ndim == 1:
            commands = commands[None]
        if commands.ndim != 2 or commands.shape[1] != self.config.command_dim:
            raise InputError(f"arm commands must have {self.config.command_dim} values "
                             f"({', '.join(self.config.command_names)}), got shape {list(commands.shape)}")
        if not np.isfinite(commands).all():
            raise InputError("arm commands contain NaN or inf")
        if np.abs(commands).max(initial=0) > 1.0 + 1e-6:
            raise InputError(f"arm commands must lie in [-1, 1], got max |value| {np.abs(commands).max():.3g}; "
                             "scale them to the controller's range")
        return commands

    def latent_logits(self, commands_NC: torch.Tensor) -> torch.Tensor:
        return self.classifier(commands_NC)

    @torch.no_grad()
    def to_latent(self, commands) -> np.ndarray:
        """Latent action (int64 [N]) for each arm command [N, command_dim] (or one [command_dim])."""
        commands = torch.from_numpy(self.check_commands(commands)).to(self.latent_commands.device)
        return self.latent_logits(commands).argmax(-1).cpu().numpy()

    def to_commands(self, latents) -> np.ndarray:
        """Arm command (float32 [N, command_dim]) that each latent action stands for."""
        from genie_robot.models.world_model import check_actions

        latents = check_actions(np.atleast_1d(latents), self.config.num_actions)
        return self.latent_commands.cpu().numpy()[latents]


def fit_adapter(commands, latents, command_names: list[str], num_actions: int, steps: int = 500,
                lr: float = 3e-3, seed: int = 0) -> ActionAdapter:
    """Fit an adapter on paired transitions: commands float [N, C] and latent actions int [N]."""
    from genie_robot.models.world_model import check_actions

    adapter = ActionAdapter(AdapterConfig(num_actions=num_actions, command_names=list(command_names)))
    commands = adapter.check_commands(commands)
    latents = check_actions(latents, num_actions)
    if len(commands) != len(latents) or len(commands) == 0:
        raise InputError(f"fit_adapter needs as many latent actions as commands (> 0), got {len(latents)} and {len(commands)}")
    commands_NC, latents_N = torch.from_numpy(commands), torch.from_numpy(latents.astype(np.int64))
    counts = torch.bincount(latents_N, minlength=num_actions).float()
    sums = torch.zeros(num_actions, commands_NC.shape[1]).index_add_(0, latents_N, commands_NC)
    adapter.latent_commands.copy_(sums / counts.clamp(min=1)[:, None])
    adapter.latent_counts.copy_(counts)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(adapter.classifier.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small only pay thread hand-offs (10x slower on a busy CPU)
    try:
        for _ in range(steps):
            loss = F.cross_entropy(adapter.latent_logits(commands_NC), latents_N)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return adapter.eval().requires_grad_(False)
