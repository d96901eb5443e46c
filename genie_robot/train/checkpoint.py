"""Optimizer state beside a model checkpoint while training: tensors to safetensors, the
structure (groups, hyperparameters) to JSON, both written atomically."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from genie_robot.errors import CheckpointError
from genie_robot.io import atomic_path
from genie_robot.models.checkpoint import load_tensors


def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Optimizer tensors to safetensors, its structure (groups, hyperparameters) to JSON."""
    state = optimizer.state_dict()
    tensors, layout = {}, {}
    for param_id, param_state in state["state"].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{name}"] = value.detach().contiguous().cpu()
            else:
                layout[f"{param_id}.{name}"] = value
    with atomic_path(folder / "optimizer.safetensors") as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(folder / "optimizer.json") as tmp:
        tmp.write_text(json.dumps({"param_groups": state["param_groups"], "scalars": layout}))


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    tensors = load_tensors(folder / "optimizer.safetensors")
    try:
        meta = json.loads((folder / "optimizer.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder}/optimizer.json missing or damaged ({exc}); cannot resume this run") from None
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
