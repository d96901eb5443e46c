"""What the trainer needs of a model class: its training step's output, and what the stage
trains on. Each stage's behaviour lives in its model class, so one trainer loop serves all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch


@dataclass
class StepOutput:
    """One training step: the loss to minimise, scalar metrics as 0-dim tensors (turned into
    numbers only where the trainer logs, so a step never waits on the device), and frames
    for sample images: `target` and `output` [B, T, H, W, 3] in [0, 1], or `output_tokens`
    [B, T, h, w] that the run's tokenizer decodes."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    preview: dict[str, torch.Tensor] = field(default_factory=dict)


class Stage:
    """Mixin of the model classes the trainer trains (tokenizer, lam, dynamics, adapter, probe)."""

    frozen_stages: ClassVar[tuple[str, ...]] = ()  # stages of the run this one trains on, frozen
    needs_positions: ClassVar[bool] = False         # clips must carry the recorded positions (state probe)
    # training_inputs is a pure function of the clip (frozen models, no randomness): the trainer
    # may compute it once per clip and reuse it whenever the clip is drawn again.
    pure_training_inputs: ClassVar[bool] = False

    @classmethod
    def uses_actions(cls, config) -> bool:
        """Whether clips should carry the stores' recorded actions, given the config to train."""
        return False

    @classmethod
    def config_for_run(cls, config, frozen: dict, dataset):
        """The config to train, given the run's frozen models and the training data (a
        `ClipDataset`: its action_names and position_names)."""
        return config

    @classmethod
    def clip_size(cls, config, frozen: dict) -> int:
        """Resolution of the training clips."""
        return config.image_size

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        """A clip batch {"video", "actions"?, "positions"?, "tokens"?, "latents"? (the last two cached
        outputs of the frozen models)} -> what `forward` takes."""
        return batch
