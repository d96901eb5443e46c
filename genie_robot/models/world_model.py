"""The interactive world model: tokenizer + dynamics (+ LAM), one generated frame per action.

`Simulator` and `Session` hold what every world model shares (models/change_world_model.py is
the other); `WorldModel` and `VideoSession` are Genie's.

A new frame is generated from the last `memory - 1` frames (with it, `memory` frames: the
length of the training clips). Temporal attention is causal, so the keys and
values of remembered frames never change: the session caches them for the dynamics model and
for the tokenizer's decoder, and a step runs the transformers on the new frame only. When the
memory is full, the oldest frame is dropped; positions in time are absolute, so the caches are
rebuilt from the remembered tokens (one batched pass), exactly as an uncached model would see
the shortened window. `use_cache=False` recomputes everything each step (the reference).
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from genie_robot.errors import CheckpointError, InputError
from genie_robot.media import to_uint8
from genie_robot.models.checkpoint import check_compatible
from genie_robot.models.inputs import as_video, check_actions
from genie_robot.nn.quantizer import FiniteScalarQuantizer
from genie_robot.sampling import SamplingConfig, maskgit_decode


@dataclass
class Imagination:
    """What `imagine` returns: R imagined futures of N frames from one prompt."""

    prompt_frames: np.ndarray  # uint8 [P, H, W, 3], the prompt as the model keeps it
    frames: np.ndarray         # uint8 [R, N, H, W, 3]


PRECISIONS = ("fp32", "bf16")


class Simulator(abc.ABC):
    """What every interactive world model shares: prompts, actions and seeds checked one way,
    the LAM's actions for prompts, batched imagination, precision. A subclass builds its
    session from validated prompts (`_session`).

    `precision`: "fp32", or "bf16" to generate under bfloat16 autocast (see docs/performance.md for
    when it pays and how closely it follows fp32); settable between steps."""

    kind: str  # "video" (Genie's tokens of every frame) or "change" (tokens of what changes)

    def __init__(self, lam, image_size: int, num_actions: int, max_memory: int, device: torch.device, precision: str):
        self.lam = lam.eval() if lam is not None else None
        self.image_size, self.num_actions, self.max_memory, self.device = image_size, num_actions, max_memory, device
        self.precision = precision

    @property
    def precision(self) -> str:
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
        self._precision = value

    def autocast(self):
        """The generation context of this precision (bf16 autocast, or nothing)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._precision == "bf16")

    def _tensor(self, frames_THWC: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(frames_THWC)).to(self.device)[None]

    @torch.no_grad()
    def infer_actions(self, video) -> np.ndarray:
        """Latent actions [T-1] the LAM reads from a video [T, H, W, 3] (T >= 2); longer videos
        go through the LAM in windows of its length that share one frame."""
        if self.lam is None:
            raise CheckpointError("this run has no trained LAM; train one with `genie-robot train lam` to infer actions")
        video = as_video(video, self.image_size, "video")
        if len(video) < 2:
            raise InputError("inferring actions needs at least 2 frames")
        return self.lam.infer_actions_windows(self._tensor(video))[0].cpu().numpy()

    def imagine(self, prompt, actions_RN, prompt_actions: Sequence[int] | None = None, seed: int = 0,
                sampling: SamplingConfig = SamplingConfig()) -> Imagination:
        """One future per row of latent actions [R, N], from one prompt, in one batched session:
        rows share the prompt's encoding (and cache), row r samples with seed + r. Evaluation,
        rollout videos and planning all compare action sources this way."""
        actions_RN = check_actions(actions_RN, self.num_actions)
        if actions_RN.ndim != 2 or actions_RN.shape[0] < 1:
            raise InputError(f"imagine takes latent actions [rows, steps], got shape {list(actions_RN.shape)}")
        session = self.start(prompt, prompt_actions, seed=seed, batch=len(actions_RN), sampling=sampling)
        frames = session.rollout(actions_RN)
        return Imagination(session.prompt_frames, frames)

    def start(self, prompt, prompt_actions: Sequence[int] | None = None, seed: int | Sequence[int] = 0,
              batch: int = 1, sampling: SamplingConfig = SamplingConfig(), memory: int | None = None,
              use_cache: bool = True) -> Session:
        """A session from 1..memory-1 prompt frames (the last ones are kept if more).

        Transitions inside the prompt take `prompt_actions`, or the LAM's inference when None.
        `seed` is one seed (row b uses seed + b) or one per row; rows share the prompt's
        encoding and cache. See `Session`."""
        frames = as_video(prompt, self.image_size)
        actions = None if prompt_actions is None else [prompt_actions]
        return self._start([frames], actions, self._seeds(seed, batch), sampling, memory, use_cache)

    def start_rows(self, prompts, prompt_actions=None, seed: int | Sequence[int] = 0,
                   sampling: SamplingConfig = SamplingConfig(), memory: int | None = None) -> Session:
        """A session with one row per prompt (prompts of one length, each as `start` takes it):
        independent starts advanced together, as a vectorised environment needs."""
        frames = [as_video(prompt, self.image_size) for prompt in prompts]
        if not frames or len({len(f) for f in frames}) != 1:
            raise InputError(f"start_rows needs >= 1 prompts of one length, got lengths {[len(f) for f in frames]}")
        return self._start(frames, prompt_actions, self._seeds(seed, len(frames)), sampling, memory, True)

    @staticmethod
    def _seeds(seed, batch: int) -> list[int]:
        if batch < 1:
            raise InputError(f"batch must be >= 1, got {batch}")
        seeds = [seed + b for b in range(batch)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
        if len(seeds) != batch:
            raise InputError(f"got {len(seeds)} seeds for a batch of {batch}")
        return seeds

    def _start(self, frames_list, actions_list, seeds, sampling, memory, use_cache) -> Session:
        """A session from validated prompts [T, S, S, 3] (one shared by every row, or one per row),
        of which the last memory - 1 frames and the actions between them are kept."""
        memory = self.max_memory if memory is None else memory
        if not 2 <= memory <= self.max_memory:
            raise InputError(f"memory must be 2..{self.max_memory} frames (the models' window), got {memory}")
        T = len(frames_list[0])
        keep = min(T, memory - 1)
        if actions_list is None:
            actions_list = [self.infer_actions(f) if T > 1 else np.zeros(0, dtype=np.int64) for f in frames_list]
        actions_RT = np.stack([check_actions(a, self.num_actions).reshape(-1) for a in actions_list])
        if actions_RT.shape != (len(frames_list), T - 1):
            raise InputError(f"a prompt of {T} frames needs {T - 1} actions per prompt, got shape {list(actions_RT.shape)}")
        frames_RTHWC = torch.from_numpy(np.stack(frames_list)[:, T - keep:]).to(self.device)
        actions_RT = torch.as_tensor(actions_RT[:, actions_RT.shape[1] - (keep - 1):], dtype=torch.long, device=self.device)
        return self._session(frames_RTHWC, actions_RT, seeds, sampling, memory, use_cache)

    @abc.abstractmethod
    def reconstruct(self, video) -> np.ndarray:
        """What the model keeps of a video [T, H, W, 3]: uint8 frames of the same shape."""

    @abc.abstractmethod
    def _session(self, frames_RTHWC, actions_RT, seeds, sampling, memory, use_cache) -> Session:
        """The session of prompts [R, T, H, W, 3] (uint8) and the actions between their frames [R, T-1]."""


class WorldModel(Simulator):
    """Genie's world model: the video tokenizer's tokens of every frame, predicted by the dynamics."""

    kind = "video"

    def __init__(self, tokenizer, dynamics, lam=None, precision: str = "fp32"):
        models = {"tokenizer": tokenizer, "dynamics": dynamics, "lam": lam}
        check_compatible({stage: model.config for stage, model in models.items() if model is not None})
        self.tokenizer, self.dynamics = tokenizer.eval(), dynamics.eval()
        super().__init__(lam, tokenizer.config.image_size, dynamics.config.num_actions,
                         min(tokenizer.config.max_frames, dynamics.config.max_frames), next(dynamics.parameters()).device,
                         precision)
        # The levels behind the token ids, which a median draw reads; a learned codebook has no order.
        self.fsq = tokenizer.quantizer if isinstance(tokenizer.quantizer, FiniteScalarQuantizer) else None

    @torch.no_grad()
    def tokenize(self, video) -> torch.Tensor:
        """Token ids [T, h, w] of a video [T, H, W, 3], in windows of the tokenizer's length."""
        return self.tokenizer.encode_windows(self._tensor(as_video(video, self.image_size, "video")))[0]

    @torch.no_grad()
    def detokenize(self, ids_Thw: torch.Tensor) -> np.ndarray:
        """Token ids [T, h, w] -> uint8 frames [T, H, W, 3], in windows of the tokenizer's length."""
        window = self.tokenizer.config.max_frames
        return to_uint8(torch.cat([self.tokenizer.decode(ids_Thw[None, s : s + window])[0]
                                   for s in range(0, len(ids_Thw), window)]))

    def reconstruct(self, video) -> np.ndarray:
        """Tokenize and decode a video: what the tokenizer keeps of it."""
        return self.detokenize(self.tokenize(video))

    def _session(self, frames_RTHWC, actions_RT, seeds, sampling, memory, use_cache) -> VideoSession:
        if sampling.draw == "median" and self.fsq is None:
            raise InputError("draw 'median' needs ordered tokens, from a tokenizer with an FSQ quantizer; this one has a "
                             f"learned codebook ({self.tokenizer.config.quantizer}): use draw 'sample'")
        with torch.no_grad():
            tokens_RThw = self.tokenizer.encode(frames_RTHWC)
        return VideoSession(self, tokens_RThw, actions_RT, seeds, sampling, memory, use_cache)


class Session(abc.ABC):
    """`batch` imagined futures, advanced together one frame per step.

    step(a) with an int applies it to every row and, for batch 1, returns one uint8 HxWx3
    frame; with a sequence of `batch` ints it returns [batch, H, W, 3]. A rejected action
    raises InputError and leaves the session unchanged. A subclass generates (`_advance`)."""

    row_prompt_frames: np.ndarray  # each row's prompt as the model keeps it, [batch, T, H, W, 3]

    def __init__(self, wm: Simulator, seeds, sampling, memory):
        self.wm, self.sampling, self.memory = wm, sampling, memory
        self.batch = len(seeds)
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        self.steps_taken = 0

    @property
    def prompt_frames(self) -> np.ndarray:
        """The (first row's) prompt as the model keeps it, [T, H, W, 3]."""
        return self.row_prompt_frames[0]

    def step(self, action):
        single = np.ndim(action) == 0
        actions = check_actions(np.full(self.batch, action) if single else action, self.wm.num_actions)
        if actions.shape != (self.batch,):
            raise InputError(f"give one action per session row: {self.batch} rows, got shape {actions.shape}")
        with self.wm.autocast(), torch.no_grad():
            frames_BHWC = self._advance(torch.as_tensor(actions, device=self.wm.device))
        self.steps_taken += 1
        return frames_BHWC[0] if single and self.batch == 1 else frames_BHWC

    def rollout(self, actions) -> np.ndarray:
        """actions [N] (every row) or [batch, N] -> frames [N, H, W, 3] or [batch, N, H, W, 3]."""
        actions = check_actions(actions, self.wm.num_actions)
        if actions.ndim == 1:
            frames = [self.step(a) for a in actions.tolist()]
            return np.stack(frames, axis=-4)
        if actions.ndim != 2 or actions.shape[0] != self.batch:
            raise InputError(f"rollout actions must be [N] or [{self.batch}, N], got shape {actions.shape}")
        return np.stack([self.step(column) for column in actions.T], axis=1)

    @property
    @abc.abstractmethod
    def history(self) -> int:
        """Frames in the window now."""

    @abc.abstractmethod
    def _advance(self, actions_B: torch.Tensor) -> np.ndarray:
        """One new frame per row for actions [batch] -> uint8 [batch, H, W, 3], the window moved on."""


class VideoSession(Session):
    """The video world model's session: token ids of the remembered frames, with the dynamics'
    and the decoder's caches (or none: `use_cache=False` recomputes the window each step)."""

    def __init__(self, wm: WorldModel, tokens_RThw, prompt_actions_RT, seeds, sampling, memory, use_cache):
        super().__init__(wm, seeds, sampling, memory)
        self.use_cache = use_cache
        no_action = torch.full_like(tokens_RThw[:, :1, 0, 0], wm.dynamics.config.no_action_id)
        # The window: token ids of remembered frames and the action that led into each.
        self.tokens_BThw = tokens_RThw
        self.actions_in_BT = torch.cat([no_action, prompt_actions_RT], dim=1)
        # Caches are built once per prompt: a prompt shared by every row (R = 1) is copied to them.
        self.dynamics_cache = self.decoder_cache = None
        self.cache_rows = 0
        with wm.autocast():
            frames_RTHWC = self._rebuild_caches() if use_cache else None
            if frames_RTHWC is None:
                frames_RTHWC = wm.tokenizer.decode(tokens_RThw)
        self.row_prompt_frames = np.repeat(to_uint8(frames_RTHWC), self.batch // len(frames_RTHWC), axis=0)
        if tokens_RThw.shape[0] == 1 and self.batch > 1:
            self.tokens_BThw = self.tokens_BThw.repeat(self.batch, 1, 1, 1)
            self.actions_in_BT = self.actions_in_BT.repeat(self.batch, 1)
            if use_cache:
                self.dynamics_cache = self.dynamics_cache.repeat_batch(self.batch)
                self.decoder_cache = self.decoder_cache.repeat_batch(self.batch)
                self.cache_rows = self.batch

    @property
    def history(self) -> int:
        return self.tokens_BThw.shape[1]

    @torch.no_grad()
    def _rebuild_caches(self) -> torch.Tensor | None:
        """Caches of the window from its tokens; returns the window's decoded frames when filling
        the decoder's cache decoded them (a per-frame decoder keeps nothing: None)."""
        rows = self.tokens_BThw.shape[0]
        if rows != self.cache_rows:
            self.dynamics_cache, self.decoder_cache = self.wm.dynamics.new_cache(rows), self.wm.tokenizer.new_decoder_cache(rows)
            self.cache_rows = rows
        else:  # the buffers are reused: refilled from the first frame
            self.dynamics_cache.length = self.decoder_cache.length = 0
        self.wm.dynamics.remember(self.tokens_BThw, self.actions_in_BT, self.dynamics_cache)
        if not self.wm.tokenizer.config.dec_temporal:
            return None
        return self.wm.tokenizer.decode(self.tokens_BThw, self.decoder_cache)

    def _forget_oldest(self) -> None:
        self.tokens_BThw = self.tokens_BThw[:, 1:]
        self.actions_in_BT = self.actions_in_BT[:, 1:].clone()
        self.actions_in_BT[:, 0] = self.wm.dynamics.config.no_action_id  # as a training clip's first frame
        if self.use_cache:
            self._rebuild_caches()

    @torch.no_grad()
    def _advance(self, actions_B: torch.Tensor) -> np.ndarray:
        wm, c = self.wm, self.wm.dynamics.config
        if self.history >= self.memory:  # the new frame would not fit in the window
            self._forget_oldest()
        B, h = self.batch, c.grid
        action_in_B1 = actions_B[:, None]

        last_B1hw = self.tokens_BThw[:, -1:]
        if self.use_cache:
            def logits_fn(tokens_BN):
                logits = wm.dynamics.frame_logits(tokens_BN.view(B, 1, h, h), action_in_B1, self.dynamics_cache, commit=False,
                                                  previous_B1hw=last_B1hw)
                return rearrange(logits, "b 1 h w v -> b (h w) v")
        else:
            def logits_fn(tokens_BN):
                window = torch.cat([self.tokens_BThw, tokens_BN.view(B, 1, h, h)], dim=1)
                logits = wm.dynamics.frame_logits(window, torch.cat([self.actions_in_BT, action_in_B1], dim=1))
                return rearrange(logits[:, -1], "b h w v -> b (h w) v")

        masked_BN = torch.full((B, h * h), c.mask_id, dtype=torch.long, device=wm.device)
        new_B1hw = maskgit_decode(logits_fn, masked_BN, c.mask_id, self.sampling, self.generators, wm.fsq).view(B, 1, h, h)

        if self.use_cache:
            wm.dynamics.remember(new_B1hw, action_in_B1, self.dynamics_cache, previous_B1hw=last_B1hw)
            frame_B1HWC = wm.tokenizer.decode(new_B1hw, self.decoder_cache)
        else:
            frame_B1HWC = wm.tokenizer.decode(torch.cat([self.tokens_BThw, new_B1hw], dim=1))[:, -1:]
        self.tokens_BThw = torch.cat([self.tokens_BThw, new_B1hw], dim=1)
        self.actions_in_BT = torch.cat([self.actions_in_BT, action_in_B1], dim=1)
        return to_uint8(frame_B1HWC[:, 0])
