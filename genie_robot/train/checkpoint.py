"""Checkpoints as folders: config.json + model.safetensors (+ optimizer.safetensors and
trainer_state.json while training). No pickle anywhere, so loading never runs code.
Every file is written to a temporary name and renamed into place."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genie_robot.errors import CheckpointError, ConfigError
from genie_robot.io import atomic_path
from genie_robot.models import MODELS


def save_model(model: torch.nn.Module, folder: str | Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    model.config.save(folder / "config.json")


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
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
    state = _load_tensors(folder / "model.safetensors")
    own = model.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    extra = [k for k in state if k not in own]
    if bad or extra:
        shapes = [f"{k}: {tuple(state[k].shape) if k in state else 'missing'} vs {tuple(own[k].shape)}" for k in bad[:3]]
        raise CheckpointError(f"{folder}: weights do not fit the config ({'; '.join(shapes)}; {len(extra)} unexpected); "
                              "config.json and model.safetensors come from different models")
    model.load_state_dict(state)
    return model.to(device)


def load_run_models(run_dir: str | Path, kinds, purpose: str, device: str = "cpu") -> dict:
    """The frozen, eval-mode models of a run directory (RUN/<kind>/), by kind."""
    run_dir = Path(run_dir)
    models = {}
    for kind in kinds:
        folder = run_dir / kind
        if not (folder / "model.safetensors").exists():
            raise CheckpointError(f"{purpose} needs a trained {kind} in {folder}; "
                                  f"run `genie-robot train {kind} --out {run_dir}` first")
        models[kind] = load_model(folder, kind, device=device).eval().requires_grad_(False)
    return models


def check_compatible(dynamics, tokenizer, lam=None) -> None:
    """Configs of one run's models must agree on the token grid, vocabulary and actions."""
    checks = [(dynamics.grid, tokenizer.grid, "grid (tokens per side)"),
              (dynamics.codebook_size, tokenizer.codebook_size, "codebook_size")]
    if lam is not None:
        checks += [(dynamics.num_actions, lam.num_actions, "num_actions"),
                   (lam.image_size, tokenizer.image_size, "image_size (lam vs tokenizer)")]
    for mine, theirs, name in checks:
        if mine != theirs:
            raise ConfigError(f"dynamics {name} is {mine} but the run's other models have {theirs}; "
                              "use the same preset for all three stages")
    if getattr(dynamics, "head", "joint") == "levels" and tokenizer.quantizer != "fsq":
        raise ConfigError("a dynamics model with a 'levels' head needs an FSQ tokenizer, but the run's tokenizer "
                          f"uses {tokenizer.quantizer!r}; use the same preset for all three stages")


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
    tensors = _load_tensors(folder / "optimizer.safetensors")
    try:
        meta = json.loads((folder / "optimizer.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder}/optimizer.json missing or damaged ({exc}); cannot resume this run") from None
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
