"""Checkpoints as folders: config.json + model.safetensors. No pickle anywhere, so loading
never runs code. Every file is written to a temporary name and renamed into place."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genie_robot.errors import CheckpointError, ConfigError
from genie_robot.io import atomic_path
from genie_robot.models.adapter import ActionAdapter, AdapterConfig
from genie_robot.models.change_dynamics import ChangeDynamics, ChangeDynamicsConfig
from genie_robot.models.change_tokenizer import ChangeTokenizer, ChangeTokenizerConfig
from genie_robot.models.dynamics import DynamicsConfig, DynamicsModel
from genie_robot.models.latent_action import LatentActionConfig, LatentActionModel
from genie_robot.models.state_probe import ProbeConfig, StateProbe
from genie_robot.models.tokenizer import TokenizerConfig, VideoTokenizer

MODELS = {
    "tokenizer": (TokenizerConfig, VideoTokenizer),
    "lam": (LatentActionConfig, LatentActionModel),
    "dynamics": (DynamicsConfig, DynamicsModel),
    "adapter": (AdapterConfig, ActionAdapter),
    "probe": (ProbeConfig, StateProbe),
    "change_tokenizer": (ChangeTokenizerConfig, ChangeTokenizer),
    "change_dynamics": (ChangeDynamicsConfig, ChangeDynamics),
}


def save_model(model: torch.nn.Module, folder: str | Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """config.json + model.safetensors: the model's own weights, or `state` (its weight
    average, which a trainer with EMA saves for inference)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(model.state_dict() if state is None else state, folder / "model.safetensors")
    model.config.save(folder / "config.json")


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint folder is incomplete (was training interrupted before the first save?)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({exc}); use an earlier checkpoint or retrain") from None


def load_model(folder: str | Path, kind: str | None = None, expect_config=None, device: str = "cpu"):
    """Rebuild a model from its folder. `expect_config` (a config object) makes a mismatch
    between what is on disk and what the caller asked for an error that names the fields."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    try:
        raw = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no config.json; not a genie-robot checkpoint folder") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{folder}/config.json is not valid JSON ({exc}); the checkpoint is damaged") from None
    found = raw.get("kind")
    if kind is not None and found != kind:
        raise CheckpointError(f"{folder}: holds a {found!r} model, expected a {kind!r} model")
    if found not in MODELS:
        raise CheckpointError(f"{folder}: unknown model kind {found!r}")
    config_cls, model_cls = MODELS[found]
    try:
        config = config_cls.from_dict(raw)
    except ConfigError as exc:
        raise CheckpointError(f"{folder}: {exc}") from None
    if expect_config is not None and config != expect_config:
        diffs = {k: (v, getattr(expect_config, k)) for k, v in vars(config).items() if getattr(expect_config, k) != v}
        detail = ", ".join(f"{k}: checkpoint {a} vs requested {b}" for k, (a, b) in diffs.items())
        raise CheckpointError(f"{folder}: checkpoint config does not match the requested one ({detail}); "
                              "use the same preset, or a new --out folder")
    model = model_cls(config)
    state = load_tensors(folder / "model.safetensors")
    own = model.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    extra = [k for k in state if k not in own]
    if bad or extra:
        shapes = [f"{k}: {tuple(state[k].shape) if k in state else 'missing'} vs {tuple(own[k].shape)}" for k in bad[:3]]
        raise CheckpointError(f"{folder}: weights do not fit the config ({'; '.join(shapes)}; {len(extra)} unexpected); "
                              "config.json and model.safetensors come from different models")
    model.load_state_dict(state)
    return model.to(device)


# (stage, stage, what both must agree on): a run's models are trained one after another on
# each other's outputs, so these hold for every pair that is present.
_AGREE = (("dynamics", "tokenizer", "grid"), ("dynamics", "tokenizer", "codebook_size"),
          ("dynamics", "lam", "num_actions"), ("lam", "tokenizer", "image_size"),
          ("adapter", "lam", "num_actions"), ("adapter", "dynamics", "num_actions"),
          ("probe", "tokenizer", "image_size"), ("change_tokenizer", "lam", "image_size"),
          ("change_tokenizer", "lam", "num_actions"), ("change_dynamics", "lam", "num_actions"),
          ("change_dynamics", "change_tokenizer", "grid"), ("change_dynamics", "change_tokenizer", "codebook_size"),
          ("change_dynamics", "change_tokenizer", "image_size"))


def check_compatible(configs: dict) -> None:
    """Configs of one run's models, by stage (any subset), must agree on the token grid,
    vocabulary, resolution and actions."""
    for a, b, name in _AGREE:
        if a in configs and b in configs and getattr(configs[a], name) != getattr(configs[b], name):
            raise ConfigError(f"{a} {name} is {getattr(configs[a], name)} but the run's {b} has "
                              f"{getattr(configs[b], name)}; train every stage of a run with the same preset")
