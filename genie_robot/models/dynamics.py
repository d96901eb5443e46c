"""MaskGIT dynamics model: predicts the next frame's tokens from past tokens and latent actions.

Training (Genie, section 2.1): tokens of frames 2..T are masked with a per-clip Bernoulli rate
r ~ U(0.5, 1); frame 1 is never masked. With one rate per clip every context frame is at least
half masked, so apart from the first transition the model never learns to predict a frame from a
complete previous one, which is all it ever sees when it generates. Our presets draw a rate per
frame (`mask_per_frame`): a lightly masked frame is the clean context of a heavily masked next
one. They draw it by MaskGIT's cosine schedule (`mask_schedule`, r_t = cos(pi/2 u), u ~ U(0, 1)),
which masks nearly all of a frame more often than a uniform rate does, and a nearly blank frame
is where only the past and the action can say where the arm went; and they leave a share of the
frames complete (`clean_frames`), as generation's context always is. They also weigh the loss of
tokens that differ from the previous frame's token at the same position (`changed_weight`):
with stable tokens most tokens repeat, and a model that copies them gets most of the loss right
while ignoring the arm and its actions.

`context_noise` (random tokens in the visible context while training, off in our presets) was
meant to teach the model to correct its own mistakes; since a noised token is one that just
changed and its target is the old value, it taught the model to undo every change, real pushes
included (docs/experiments/next_frame_lag.md). `previous_tokens` embeds, at each token, the token
one frame earlier at its position: a copy-or-change prior, which made the model copy more and
follow its actions less (same page).

The latent action a_t (what moved frame t to t+1) is added as an embedding to every token of
frame t+1 (the paper's way). Causal temporal attention lets frame t+1's logits depend on frames
<= t+1 and actions <= t only. Cross-entropy on masked tokens."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from genie_robot.errors import ConfigError
from genie_robot.models.config import ModelConfig
from genie_robot.models.stage import Stage, StepOutput
from genie_robot.nn import STTransformer, TemporalKV
from genie_robot.sampling import SCHEDULES

# Our presets' training objective (module docstring); the paper's presets keep the paper's.
_OURS = dict(mask_per_frame=True, mask_rate_min=0.0, mask_schedule="cosine", clean_frames=0.3, changed_weight=8.0)


@dataclass
class DynamicsConfig(ModelConfig):
    kind: ClassVar[str] = "dynamics"
    presets: ClassVar[dict] = {
        "tiny": dict(grid=4, codebook_size=64, num_actions=8, dim=32, layers=1, heads=2, max_frames=16, **_OURS),
        "small": dict(grid=16, codebook_size=512, num_actions=8, dim=128, layers=4, heads=4, max_frames=16, **_OURS),
        "base": dict(grid=16, codebook_size=1024, num_actions=8, dim=512, layers=12, heads=8, max_frames=16, **_OURS),
        "coinrun": dict(grid=16, codebook_size=1024, num_actions=6, dim=512, layers=12, heads=8, max_frames=16),
        # The paper's 36 heads do not divide d=5120; 40 heads of 128 keep its width and depth.
        "paper": dict(grid=40, codebook_size=1024, num_actions=8, dim=5120, layers=48, heads=40, max_frames=16),
    }
    grid: int = 16  # tokens per side of a frame (tokenizer image_size / patch)
    codebook_size: int = 512
    num_actions: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4
    max_frames: int = 16
    mask_rate_min: float = 0.5
    mask_rate_max: float = 1.0
    mask_per_frame: bool = False  # one mask rate per frame instead of per clip
    mask_schedule: str = "uniform"  # uniform | cosine: rate = min + (max - min) * cos(pi/2 u), MaskGIT's
    changed_weight: float = 1.0  # loss weight of tokens that differ from the previous frame's
    context_noise: float = 0.0  # share of visible tokens replaced by random ones while training
    clean_frames: float = 0.0  # share of frames after the first left unmasked (mask_per_frame): complete context
    previous_tokens: bool = False  # each token also embeds the token one frame earlier at its position
    qk_norm: bool = True
    # Options of earlier versions that nothing trained with: a checkpoint may still name them at
    # the value that meant "off" (`from_dict`).
    removed: ClassVar[dict] = {"head": "joint", "action_input": "add", "action_dropout": 0.0}

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.mask_rate_min <= self.mask_rate_max <= 1.0:
            raise ConfigError("dynamics config: need 0 <= mask_rate_min <= mask_rate_max <= 1")
        if self.mask_schedule not in ("uniform", "cosine"):
            raise ConfigError(f"dynamics config: mask_schedule must be 'uniform' or 'cosine', got {self.mask_schedule!r}")
        if not 0.0 <= self.context_noise < 1.0:
            raise ConfigError(f"dynamics config: context_noise must be in [0, 1), got {self.context_noise}")
        if not 0.0 <= self.clean_frames < 1.0 or (self.clean_frames and not self.mask_per_frame):
            raise ConfigError(f"dynamics config: clean_frames must be in [0, 1) and needs mask_per_frame, got {self.clean_frames}")
        if not self.changed_weight > 0:
            raise ConfigError(f"dynamics config: changed_weight must be > 0, got {self.changed_weight}")

    @classmethod
    def from_dict(cls, data: dict):
        """Also reads a checkpoint of an earlier version: its `removed` options are dropped where
        they are off, and refused where the model was trained with them."""
        data = dict(data)
        for name, off in cls.removed.items():
            value = data.pop(name, off)
            if value != off:
                raise ConfigError(f"this dynamics checkpoint was trained with {name}={value!r}, an option this version no "
                                  f"longer supports (only {name}={off!r}); sample it with the genie-robot version that "
                                  "trained it, or retrain the dynamics stage")
        return super().from_dict(data)

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    @property
    def no_action_id(self) -> int:
        """What leads into the first frame of a window: no transition is known."""
        return self.num_actions


class DynamicsModel(nn.Module, Stage):
    frozen_stages = ("tokenizer", "lam")

    @classmethod
    def config_for_run(cls, config: DynamicsConfig, frozen: dict, dataset) -> DynamicsConfig:
        """One action embedding per latent action of the run's LAM (`train lam --num-actions`)."""
        return dataclasses.replace(config, num_actions=frozen["lam"].config.num_actions)

    def __init__(self, config: DynamicsConfig):
        super().__init__()
        self.config = c = config
        self.token_embed = nn.Embedding(c.codebook_size + 1, c.dim)  # + the mask token
        self.action_embed = nn.Embedding(c.num_actions + 1, c.dim)
        # The previous frame's token at the same position (the mask id where there is none): a
        # token to predict starts from what was there, and a context token shows how it changed.
        self.previous_embed = nn.Embedding(c.codebook_size + 1, c.dim) if c.previous_tokens else None
        self.transformer = STTransformer(c.dim, c.layers, c.heads, c.max_frames, c.grid**2, c.qk_norm)
        self.head = nn.Linear(c.dim, c.codebook_size)

    def _check(self, tokens_BThw: torch.Tensor, actions_BT: torch.Tensor) -> None:
        c = self.config
        if tokens_BThw.shape[2:] != (c.grid, c.grid):
            raise ValueError(f"dynamics expects token grids of {c.grid}x{c.grid}, got {tuple(tokens_BThw.shape[2:])}")
        if actions_BT.shape != (tokens_BThw.shape[0], tokens_BThw.shape[1] - 1):
            raise ValueError(
                f"need T-1 actions for T frames (actions[t] moves frame t to t+1): tokens {tuple(tokens_BThw.shape)}, "
                f"actions {tuple(actions_BT.shape)}"
            )
        if actions_BT.numel() and (actions_BT.min() < 0 or actions_BT.max() >= c.num_actions):
            raise ValueError(f"latent actions must lie in 0..{c.num_actions - 1}, got {actions_BT.min().item()}..{actions_BT.max().item()}")

    def logits(self, tokens_BThw: torch.Tensor, actions_BT: torch.Tensor) -> torch.Tensor:
        """tokens [B, T, h, w] (may contain mask_id) + actions [B, T-1] -> logits [B, T, h, w, V]."""
        return self.frame_logits(tokens_BThw, self._actions_in(tokens_BThw, actions_BT))

    def _actions_in(self, tokens_BThw: torch.Tensor, actions_BT: torch.Tensor) -> torch.Tensor:
        """The action leading into each frame [B, T]: no_action_id for the first."""
        self._check(tokens_BThw, actions_BT)
        no_action_B1 = torch.full_like(actions_BT[:, :1], self.config.no_action_id)
        return torch.cat([no_action_B1, actions_BT], dim=1)

    def new_cache(self, batch: int) -> TemporalKV:
        """An empty cache for generating `batch` rows frame by frame."""
        return self.transformer.empty_cache(batch, self.head.weight.device, self.head.weight.dtype)

    def frame_logits(self, tokens_BThw: torch.Tensor, actions_in_BT: torch.Tensor, cache: TemporalKV | None = None,
                     commit: bool = True, time_offset: torch.Tensor | None = None,
                     previous_B1hw: torch.Tensor | None = None) -> torch.Tensor:
        """Frames that continue `cache` in time, each with the action that led into it
        (no_action_id for a window's first frame) -> logits [B, T, h, w, V]. The frames join
        the cache when `commit` (MaskGIT's passes over a partly decoded frame do not).
        `time_offset`: where an uncached clip starts in the window (STTransformer.forward).
        `previous_B1hw`: the cached frames' last tokens, which a model with `previous_tokens`
        needs to continue a cache (a window's first frame has none)."""
        hidden = self._hidden(tokens_BThw, actions_in_BT, cache, commit, time_offset, previous_B1hw)
        return rearrange(self.head(hidden), "b t (h w) v -> b t h w v", h=self.config.grid)

    def remember(self, tokens_BThw: torch.Tensor, actions_in_BT: torch.Tensor, cache: TemporalKV,
                 previous_B1hw: torch.Tensor | None = None) -> None:
        """Add finished frames to `cache` without the logits nobody would read."""
        self._hidden(tokens_BThw, actions_in_BT, cache, True, None, previous_B1hw)

    def _hidden(self, tokens_BThw, actions_in_BT, cache, commit, time_offset, previous_B1hw) -> torch.Tensor:
        """The transformer's output for the image tokens [B, T, h*w, D]."""
        x_BThwD = self.token_embed(tokens_BThw) + self.action_embed(actions_in_BT)[:, :, None, None]
        if self.previous_embed is not None:
            if previous_B1hw is None:
                if cache is not None and cache.length:
                    raise ValueError("this dynamics model embeds each frame's predecessor: pass the cached frames' last "
                                     "tokens (previous_B1hw) to continue a cache")
                previous_B1hw = torch.full_like(tokens_BThw[:, :1], self.config.mask_id)
            x_BThwD = x_BThwD + self.previous_embed(torch.cat([previous_B1hw, tokens_BThw[:, :-1]], dim=1))
        x_BTSD = rearrange(x_BThwD, "b t h w d -> b t (h w) d")
        return self.transformer(x_BTSD, cache=cache, commit=commit, time_offset=time_offset)

    def random_mask(self, tokens_BThw: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bool mask [B, T, h, w]: frame 1 never masked, later frames at a rate between min and max
        drawn per clip (or per frame with mask_per_frame): uniformly, or by MaskGIT's cosine
        schedule, which masks most of a frame more often, as in the first steps of decoding."""
        c = self.config
        B, T = tokens_BThw.shape[:2]
        u = torch.empty(B, T if c.mask_per_frame else 1, 1, 1, device=tokens_BThw.device).uniform_(generator=generator)
        if c.mask_schedule == "cosine":
            u = SCHEDULES["cosine"](u)
        rate = c.mask_rate_min + (c.mask_rate_max - c.mask_rate_min) * u
        if c.clean_frames:
            rate = rate.masked_fill(torch.rand(rate.shape, device=rate.device, generator=generator) < c.clean_frames, 0.0)
        mask = torch.rand(tokens_BThw.shape, device=tokens_BThw.device, generator=generator) < rate
        mask[:, 0] = False
        return mask

    @classmethod
    def clip_size(cls, config, frozen: dict) -> int:
        return frozen["tokenizer"].config.image_size

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        """Token ids and the LAM's latent actions (cached by the trainer, or computed here)."""
        video = batch["video"]
        tokens = batch["tokens"] if "tokens" in batch else frozen["tokenizer"].encode(video)
        actions = batch["latents"] if "latents" in batch else frozen["lam"].infer_actions(video)
        return {"tokens": tokens, "actions": actions, "video": video}

    def forward(self, batch: dict) -> StepOutput:
        tokens, actions = batch["tokens"], batch["actions"]
        mask = batch.get("mask")
        if mask is None:
            mask = self.random_mask(tokens)
        inputs = tokens.masked_fill(mask, self.config.mask_id)
        if self.training and self.config.context_noise:
            # Generated frames carry wrong tokens into the next step's context; seeing some in
            # training teaches the model to correct them rather than to build on them.
            noisy = (torch.rand(tokens.shape, device=tokens.device) < self.config.context_noise) & ~mask
            inputs = torch.where(noisy, torch.randint_like(tokens, self.config.codebook_size), inputs)
        actions_in = self._actions_in(inputs, actions)
        time_offset = None
        if self.training:
            # A clip shorter than the window sits at a random place in it, so that short
            # training clips still train every position in time that generation reaches.
            spare = max(0, self.config.max_frames - tokens.shape[1])  # a clip too long fails in the transformer
            time_offset = torch.randint(0, spare + 1, (), device=tokens.device)
        logits = self.frame_logits(inputs, actions_in, time_offset=time_offset)
        changed = torch.zeros_like(mask)
        changed[:, 1:] = tokens[:, 1:] != tokens[:, :-1]
        # Masked tokens only, changed ones weighted up; written without data-dependent
        # branches or indexing so that a step never waits on the device.
        weight = mask.float() * (1.0 + (self.config.changed_weight - 1.0) * changed.float())
        nll = F.cross_entropy(rearrange(logits, "b t h w v -> b v t h w"), tokens, reduction="none")
        loss = (nll * weight).sum() / weight.sum().clamp_min(1.0)
        with torch.no_grad():
            predicted = logits.argmax(-1)
            hit = (predicted == tokens).float()
            moved = mask & changed
            # Means over empty selections are NaN (no masked or no changed token this step).
            metrics = {"loss": loss.detach(), "token_accuracy": hit[mask].mean(), "changed_accuracy": hit[moved].mean()}
        return StepOutput(loss, metrics, {"output_tokens": predicted})
