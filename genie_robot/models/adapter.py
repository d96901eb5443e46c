"""Action adapter: arm commands <-> the world model's latent actions.

The LAM learns its own small action vocabulary from video; a robot speaks in commands
(end-effector velocity + gripper, in [-1, 1]). The adapter is trained as the run's fourth
stage (`genie-robot train adapter`) on episodes where both are known (commands recorded,
latent actions inferred by the frozen LAM from the video):
  to_latent:   command -> latent action, a small MLP classifier (cross-entropy);
  to_commands: latent action -> command: the direction of the latent action's mean command
               (accumulated over the training transitions) at full strength. The mean itself
               is shrunk by every transition the LAM gave the code that moved less or elsewhere:
               executed as it is, it moves the hand at a fraction of the speed the code's
               transitions had, which caps what a planner can do even with a perfect model
               (docs/experiments/planning_first_steps.md).
It is saved beside the models as RUN/adapter/ (config.json + model.safetensors)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genie_robot.errors import ConfigError, InputError
from genie_robot.models.config import ModelConfig
from genie_robot.models.inputs import check_actions
from genie_robot.models.stage import Stage, StepOutput


@dataclass
class AdapterConfig(ModelConfig):
    kind: ClassVar[str] = "adapter"
    # One MLP serves every model size: its input is a handful of command values.
    presets: ClassVar[dict] = {name: {} for name in ("tiny", "small", "base", "coinrun", "paper")}
    num_actions: int = 8
    hidden: int = 64
    command_names: list = field(default_factory=list)  # the store's action_names; filled from the data

    @property
    def command_dim(self) -> int:
        return len(self.command_names)


# A mean command whose largest velocity component is below this moves too little to have a
# direction: it stands for "stay" and is kept as it is (the deadband of controllers.behaviour_of).
STILL = 0.25


class ActionAdapter(nn.Module, Stage):
    frozen_stages = ("lam",)

    @classmethod
    def uses_actions(cls, config) -> bool:
        return True  # it learns the mapping from recorded commands

    def __init__(self, config: AdapterConfig):
        super().__init__()
        if not config.command_names:
            raise ConfigError("adapter config: command_names must name each arm command dimension")
        self.config = c = config
        self.classifier = nn.Sequential(
            nn.Linear(c.command_dim, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, c.hidden), nn.GELU(),
            nn.Linear(c.hidden, c.num_actions),
        )
        # Sum of the commands seen with each latent action while training, and how many
        # (repeats counted): their ratio is the command a latent action stands for; a count of
        # 0 marks one the LAM never used.
        self.register_buffer("command_sums", torch.zeros(c.num_actions, c.command_dim))
        self.register_buffer("latent_counts", torch.zeros(c.num_actions))

    @classmethod
    def config_for_run(cls, config: AdapterConfig, frozen: dict, dataset) -> AdapterConfig:
        if not dataset.action_names:
            raise InputError("the adapter learns from recorded arm commands, but the training stores have none "
                             "(or their action layouts differ); use episodes of `genie-robot data mujoco`, or a "
                             "store converted with its actions")
        return dataclasses.replace(config, num_actions=frozen["lam"].config.num_actions, command_names=list(dataset.action_names))

    @classmethod
    def clip_size(cls, config, frozen: dict) -> int:
        return frozen["lam"].config.image_size

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        """Each transition of the clips: its recorded command and the LAM's latent action
        (cached by the trainer, or read here)."""
        latents_BT = batch["latents"] if "latents" in batch else frozen["lam"].infer_actions(batch["video"])
        return {"commands": batch["actions"].reshape(-1, self.config.command_dim).float(), "latents": latents_BT.reshape(-1)}

    def forward(self, batch: dict) -> StepOutput:
        commands_NC, latents_N = batch["commands"], batch["latents"]
        if self.training:
            with torch.no_grad():
                self.command_sums.index_add_(0, latents_N, commands_NC)
                self.latent_counts += torch.bincount(latents_N, minlength=self.config.num_actions)
        logits_NA = self.classifier(commands_NC)
        loss = F.cross_entropy(logits_NA, latents_N)
        accuracy = (logits_NA.detach().argmax(-1) == latents_N).float().mean()
        return StepOutput(loss, {"loss": loss.detach(), "accuracy": accuracy})

    @property
    def latent_commands(self) -> torch.Tensor:
        """[num_actions, command_dim]: the mean command of each latent action (0 where unused)."""
        return self.command_sums / self.latent_counts.clamp(min=1)[:, None]

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

    @torch.no_grad()
    def to_latent(self, commands) -> np.ndarray:
        """Latent action (int64 [N]) for each arm command [N, command_dim] (or one [command_dim])."""
        commands = torch.from_numpy(self.check_commands(commands)).to(self.command_sums.device)
        return self.classifier(commands).argmax(-1).cpu().numpy()

    def to_commands(self, latents) -> np.ndarray:
        """Arm command (float32 [N, command_dim]) that each latent action stands for: its mean
        command scaled until the largest velocity component is +-1 (gripper channels, named
        "gripper...", keep the mean), or the mean itself where it barely moves (< STILL)."""
        latents = check_actions(np.atleast_1d(latents), self.config.num_actions)
        commands_AC = self.latent_commands.cpu().numpy()
        velocity = [i for i, name in enumerate(self.config.command_names) if not name.lower().startswith("gripper")]
        speed_A = np.abs(commands_AC[:, velocity]).max(1, initial=0)
        moving = speed_A >= STILL
        commands_AC[np.ix_(moving, velocity)] /= speed_A[moving, None]
        return commands_AC[latents]


def fit_adapter(commands, latents, command_names: list[str], num_actions: int, steps: int = 500,
                lr: float = 3e-3, seed: int = 0) -> ActionAdapter:
    """An adapter fit in memory on paired transitions: commands float [N, C] and latent actions
    int [N] (full-batch Adam on the training stage's loss; `genie-robot train adapter` trains
    the run's adapter from a store)."""
    adapter = ActionAdapter(AdapterConfig(num_actions=num_actions, command_names=list(command_names)))
    commands = adapter.check_commands(commands)
    latents = check_actions(latents, num_actions)
    if len(commands) != len(latents) or len(commands) == 0:
        raise InputError(f"fit_adapter needs as many latent actions as commands (> 0), got {len(latents)} and {len(commands)}")
    batch = {"commands": torch.from_numpy(commands), "latents": torch.from_numpy(latents)}
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(adapter.classifier.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small only pay thread hand-offs (much slower on a busy CPU)
    try:
        adapter.train()
        for _ in range(steps):
            output = adapter(batch)
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return adapter.eval().requires_grad_(False)
