"""A run directory as one object: the stages trained into it, checked against each other.

Layout: RUN/tokenizer/, RUN/lam/, RUN/dynamics/, RUN/adapter/, RUN/probe/, and optionally
RUN/change_tokenizer/, RUN/change_dynamics/ (each config.json + model.safetensors, written by
`genie-robot train <stage> --out RUN`), RUN/logs/. Training
writes stages; everything else (eval, plan, play, serve, benchmarks) reads a run through
`Run.load` and never writes into it."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genie_robot.errors import CheckpointError, ConfigError
from genie_robot.models.change_world_model import ChangeWorldModel
from genie_robot.models.checkpoint import check_compatible, load_model
from genie_robot.models.world_model import Simulator, WorldModel

# In training order; the probe needs none of the others. The change tokenizer and its dynamics
# (trained after the LAM) are the Delta-IRIS-style alternative to the tokenizer and dynamics.
STAGES = ("tokenizer", "lam", "dynamics", "adapter", "probe", "change_tokenizer", "change_dynamics")
# The simulators a run can serve, by the stages each needs (Run.world_model).
WORLD_MODELS = {"video": ("tokenizer", "dynamics"), "change": ("change_tokenizer", "change_dynamics", "lam")}


def resolve_device(choice: str, rank: int = 0) -> torch.device:
    """auto | cpu | cuda -> a device; asking for CUDA without one is a clear error."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but no CUDA device is available; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    if choice != "cpu":
        raise ConfigError(f"unknown device {choice!r}; use auto, cpu or cuda")
    return torch.device(choice)


def stage_trained(run_dir: str | Path, stage: str) -> bool:
    return (Path(run_dir) / stage / "model.safetensors").is_file()


class Run:
    """The frozen, eval-mode models of one run directory, by stage (missing stages absent)."""

    def __init__(self, path: str | Path, models: dict, device: str | torch.device = "cpu"):
        check_compatible({stage: model.config for stage, model in models.items()})
        self.path, self.models, self.device = Path(path), models, torch.device(device)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", stages=STAGES) -> Run:
        """Every stage of `stages` the run has; `require` names the ones a caller cannot do without."""
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such run directory (make one with `genie-robot train tokenizer --out {path}`)")
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ConfigError(f"unknown stages {sorted(unknown)}; a run holds {', '.join(STAGES)}")
        models = {stage: load_model(path / stage, stage, device=str(device)).eval().requires_grad_(False)
                  for stage in stages if stage_trained(path, stage)}
        return cls(path, models, device)

    def has(self, stage: str) -> bool:
        return stage in self.models

    def require(self, stage: str, purpose: str):
        """The stage's model, or an error naming the command that trains it."""
        if stage not in self.models:
            data = {"adapter": "STORE_WITH_ARM_COMMANDS.h5", "probe": "STORE_WITH_STATE.h5"}.get(stage, "STORE.h5")
            raise CheckpointError(f"{purpose} needs a trained {stage} in {self.path / stage}; train it with "
                                  f"`genie-robot train {stage} --data {data} --out {self.path}`")
        return self.models[stage]

    @property
    def tokenizer(self):
        return self.models.get("tokenizer")

    @property
    def lam(self):
        return self.models.get("lam")

    @property
    def dynamics(self):
        return self.models.get("dynamics")

    @property
    def adapter(self):
        return self.models.get("adapter")

    @property
    def probe(self):
        return self.models.get("probe")

    def world_model(self, kind: str = "video") -> Simulator:
        """The interactive simulator: "video", Genie's tokenizer + dynamics (+ the LAM when
        trained), or "change", the change tokenizer + its dynamics + the LAM."""
        if kind not in WORLD_MODELS:
            raise ConfigError(f"unknown world model {kind!r}; choose {' or '.join(WORLD_MODELS)}")
        purpose = f"the {kind} world model"
        models = [self.require(stage, purpose) for stage in WORLD_MODELS[kind]]
        return WorldModel(*models, self.lam) if kind == "video" else ChangeWorldModel(*models)
