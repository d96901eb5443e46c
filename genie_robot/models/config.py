"""Shared config machinery: one validated dataclass per model, presets, JSON round trip."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, ClassVar

from genie_robot.errors import ConfigError


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # bool is an int to isinstance


# What a field whose default is of each type accepts, and how an error names it.
_SCALARS = {
    bool: ("true/false flag", lambda v: isinstance(v, bool)),
    int: ("whole number", _whole),
    float: ("number", lambda v: _whole(v) or isinstance(v, float)),
    str: ("string", lambda v: isinstance(v, str)),
}


@dataclasses.dataclass
class ModelConfig:
    kind: ClassVar[str] = "model"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    may_be_zero: ClassVar[tuple[str, ...]] = ()  # integer fields where 0 means "off"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            name, accepts = _SCALARS.get(type(field.default), (None, None))
            if accepts and not accepts(value):
                # A hand-edited config.json: "yes" for a flag would otherwise read as true.
                raise ConfigError(f"{self.kind} config: {field.name} must be a {name}, got {value!r}")
            if _whole(value):
                if value < 0 or (value == 0 and field.name not in self.may_be_zero):
                    raise ConfigError(f"{self.kind} config: {field.name} must be positive, got {value}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{self.kind} config: {field.name} must be a finite number, got {value}")
        dim, heads = getattr(self, "dim", None), getattr(self, "heads", None)
        if dim and heads and dim % heads:
            raise ConfigError(f"{self.kind} config: width dim={dim} is not divisible by heads={heads}")

    @classmethod
    def preset(cls, name: str, **overrides):
        if name not in cls.presets:
            raise ConfigError(f"unknown {cls.kind} preset {name!r}; choose one of {sorted(cls.presets)}")
        return cls(**{**cls.presets[name], **overrides})

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict):
        data = dict(data)
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ConfigError(f"config is for a {kind!r} model, expected {cls.kind!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{cls.kind} config has unknown fields {sorted(unknown)}; was it written by another version?")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        from genie_robot.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path):
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"{path}: missing config.json; is this a {cls.kind} checkpoint folder?") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: config.json is not valid JSON ({exc}); the checkpoint is damaged") from None


class PixelModelConfig(ModelConfig):
    """Configs of models that patchify square frames (tokenizer, LAM): they must define
    `image_size` and `patch`."""

    def validate(self) -> None:
        super().validate()
        if self.image_size % self.patch:
            raise ConfigError(f"{self.kind} config: image_size {self.image_size} is not divisible by patch size {self.patch}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def tokens_per_frame(self) -> int:
        return self.grid**2
