"""One trainer for the stages of a run (tokenizer, lam, dynamics, adapter, probe).

What differs between stages lives in the model classes (`genie_robot.models.stage.Stage`):
which frozen models of the run a stage trains on, what it makes of a clip batch, its loss.

AdamW with linear warmup + cosine decay, gradient clipping and accumulation, an optional
exponential moving average of the weights (what the checkpoint then holds for inference), bf16 autocast
on CUDA and on CPUs with native bf16 matmuls, optionally the transformers compiled
(`torch.compile`: a cold compile once per run, which pays off on long steps such as the
small dynamics'), DistributedDataParallel under torchrun (data
sharded by rank), checkpoints as folders (safetensors + JSON, swapped in atomically), exact
resume, an optional wall-clock budget (`minutes`), CSV + TensorBoard logs, a progress bar and periodic sample images.

Run layout:  RUN/<stage>/            last checkpoint (config.json, model.safetensors,
                                     optimizer.safetensors, optimizer.json, trainer_state.json;
                                     with EMA, model.safetensors is the average and
                                     training_weights.safetensors the weights being trained)
             RUN/logs/<stage>/       metrics.csv, tensorboard/, samples/step_*.png
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from genie_robot.data.sampler import ClipDataset
from genie_robot.data.transforms import resize_video
from genie_robot.errors import CheckpointError, ConfigError, TrainingDiverged
from genie_robot.media import write_image
from genie_robot.models.checkpoint import MODELS, check_compatible, load_model, load_tensors, save_model, save_tensors
from genie_robot.models.run import STAGES, Run, resolve_device
from genie_robot.nn import STTransformer
from genie_robot.train.checkpoint import load_optimizer, save_optimizer
from genie_robot.train.samples import sample_image


@dataclasses.dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    clip_len: int = 16
    frame_skip: int = 1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    accum: int = 1
    ckpt_every: int = 200
    sample_every: int = 200
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where it is native: CUDA, AVX512-BF16/AMX CPUs; else fp32) | fp32 | bf16 (autocast)
    compile: bool = False  # torch.compile the model's transformers (pays off over long runs: compiling costs time once)
    ema: float = 0.0  # decay of the weights' exponential moving average, which checkpoints hold for inference; 0 = off
    memo_gb: float = 4.0  # memory for the training inputs of clips already drawn, for stages whose inputs are pure (0 = recompute)
    minutes: float = 0.0  # wall-clock budget of one train() call: steps are lowered to what fits (fit_steps_to_budget); 0 = none

    def __post_init__(self):
        for name in ("steps", "batch_size", "clip_len", "frame_skip", "accum", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training config: {name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"training config: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.warmup < 0:
            raise ConfigError("training config: lr must be > 0 and warmup >= 0")
        if not (self.minutes >= 0 and math.isfinite(self.minutes)):
            raise ConfigError(f"training config: minutes must be >= 0 (0 = no time budget), got {self.minutes}")
        if not (self.memo_gb >= 0 and math.isfinite(self.memo_gb)):
            raise ConfigError(f"training config: memo_gb must be >= 0 (0 = no memo), got {self.memo_gb}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"training config: ema must be in [0, 1) (0 = off, 0.999 = an average over ~1000 steps), got {self.ema}")
        self.betas = tuple(self.betas)


def ema_decay_at(step: int, cfg: TrainConfig) -> float:
    """cfg.ema, lowered early on so that the average forgets the random initialization fast."""
    return min(cfg.ema, (1 + step) / (10 + step))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


# A time budget times the steps after the first BUDGET_SKIP ones (compilation, warm-up) and first
# fits the step count once BUDGET_TIMED more have run; a budget spent before that stops at a log step.
BUDGET_SKIP, BUDGET_TIMED = 5, 20


def fit_steps_to_budget(step: int, cfg: TrainConfig, seconds_left: float, steps_per_second: float) -> int:
    """The step count that ends the run inside its time budget at the measured rate (5% kept for
    checkpoints and logs), never above cfg.steps nor below the current step. Steps are lowered,
    not cut off, so that the cosine decay of the learning rate still ends at the last step."""
    return max(step, min(cfg.steps, step + int(0.95 * max(0.0, seconds_left) * steps_per_second)))


class ShardedRange(Sampler):
    """Clip indices in training order from micro-batch `start`: micro-batch m on rank r gets
    m * world * batch + r * batch + [0, batch). Resuming at step s restarts at the same clips."""

    def __init__(self, start_micro: int, end_micro: int, batch: int, rank: int, world: int):
        self.start, self.end, self.batch, self.rank, self.world = start_micro, end_micro, batch, rank, world

    def __iter__(self):
        for m in range(self.start, self.end):
            base = (m * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return (self.end - self.start) * self.batch


def _distributed() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training up here: on CUDA, and on CPUs with bf16 matmul
    instructions (docs/performance.md). Elsewhere a CPU emulates bf16, slower than fp32."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def compile_transformers(model: torch.nn.Module, device: torch.device) -> bool:
    """Compile every spatiotemporal transformer of `model` in place (parameters and checkpoint
    keys unchanged), where it can be: on CPU inductor builds C++ kernels, so without a compiler
    the model stays eager, with a warning. Only the transformers: compiling the whole training
    forward (loss, masks) hit an inductor code-generation error in torch 2.13 on CPU, and the
    transformers are nearly all of a step's time. Returns whether anything was compiled."""
    if device.type == "cpu" and not any(shutil.which(cxx) for cxx in (os.environ.get("CXX"), "g++", "clang++") if cxx):
        warnings.warn("compiling the model needs a C++ compiler on CPU (none found: install g++ or set CXX); "
                      "training without compiling, which is slower but gives the same model", stacklevel=2)
        return False
    transformers = [m for m in model.modules() if isinstance(m, STTransformer)]
    for transformer in transformers:
        transformer.compile(dynamic=False)
    return bool(transformers)


def training_autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast a training forward runs under: bf16 for "bf16", and for "auto" where bf16 is
    native; off for "fp32"."""
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


class Trainer:
    def __init__(self, stage: str, model_config, data_sources, run_dir: str | Path, cfg: TrainConfig,
                 resume: bool = False, progress: bool = True):
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; choose one of {STAGES}")
        self.stage, self.cfg, self.progress = stage, cfg, progress
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / stage
        self.log_dir = self.run_dir / "logs" / stage
        self.rank, self.world = _distributed()
        self.device = resolve_device(cfg.device, self.rank)
        model_cls = MODELS[stage][1]
        self.frozen = self._frozen_models(model_cls)
        self.dataset = ClipDataset(data_sources, clip_len=cfg.clip_len, frame_skip=cfg.frame_skip,
                                   size=model_cls.clip_size(model_config, self.frozen), seed=cfg.seed,
                                   with_actions=None if model_cls.uses_actions(model_config) else False,
                                   with_positions=model_cls.needs_positions)
        model_config = model_cls.config_for_run(model_config, self.frozen, self.dataset)
        check_compatible({stage: model_config, **{name: model.config for name, model in self.frozen.items()}})
        self._recover_interrupted_swap()
        self.step = 0
        if self.ckpt_dir.exists() and not resume:
            raise CheckpointError(f"{self.ckpt_dir} already holds a {stage} checkpoint; pass --resume to "
                                  "continue it, or choose another --out (nothing was overwritten)")
        if resume and (self.ckpt_dir / "trainer_state.json").exists():
            self.model = load_model(self.ckpt_dir, stage, expect_config=model_config, device=str(self.device))
            self.ema_state = self._ema_state()
            self._load_training_weights()
            self.optimizer = self._optimizer()
            load_optimizer(self.optimizer, self.ckpt_dir)
            self.step = json.loads((self.ckpt_dir / "trainer_state.json").read_text())["step"]
        else:
            torch.manual_seed(cfg.seed)
            self.model = model_cls(model_config).to(self.device)
            self.ema_state = self._ema_state()
            self.optimizer = self._optimizer()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.frozen_outputs = self._frozen_outputs_once()
        self.input_memo: dict[tuple[int, int, int], dict[str, torch.Tensor]] = {}
        self.input_memo_bytes = 0
        self.autocast = training_autocast(self.device, cfg.precision)
        self.compiled = cfg.compile and compile_transformers(self.model, self.device)

    # ------------------------------------------------------------------ setup
    def _frozen_models(self, model_cls) -> dict:
        """The run's earlier stages this one trains on (dynamics: tokenizer and LAM; adapter: LAM)."""
        if not model_cls.frozen_stages:
            return {}
        run = (Run.load(self.run_dir, self.device, stages=model_cls.frozen_stages) if self.run_dir.is_dir()
               else Run(self.run_dir, {}, self.device))
        return {name: run.require(name, f"training the {self.stage}") for name in model_cls.frozen_stages}

    def _ema_state(self) -> dict[str, torch.Tensor] | None:
        """A copy of the model's weights to average into (with cfg.ema), else None. The pairs
        (average, live weight) are listed once: state_dict's tensors share the weights' storage,
        which optimizer steps and load_state_dict update in place."""
        if not self.cfg.ema:
            return None
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        live = self.model.state_dict()
        self._ema_floats = ([state[k] for k in state if state[k].is_floating_point()],
                            [live[k] for k in state if state[k].is_floating_point()])
        self._ema_others = [(state[k], live[k]) for k in state if not state[k].is_floating_point()]
        return state

    def _load_training_weights(self) -> None:
        """Resuming: with EMA the checkpoint's model.safetensors is the average, and the weights
        being trained lie beside it; a checkpoint and a run that disagree on EMA cannot go on."""
        path = self.ckpt_dir / "training_weights.safetensors"
        if path.is_file() != bool(self.cfg.ema):
            saved = "with" if path.is_file() else "without"
            raise CheckpointError(f"{self.ckpt_dir} was saved {saved} a weight average (--ema) and this run asks for "
                                  f"ema={self.cfg.ema}; resume with the --ema it was trained with, or train into a new --out")
        if path.is_file():
            self.model.load_state_dict(load_tensors(path))

    @torch.no_grad()
    def _update_ema(self) -> None:
        torch._foreach_lerp_(*self._ema_floats, 1.0 - ema_decay_at(self.step, self.cfg))
        for average, value in self._ema_others:
            average.copy_(value)

    def _optimizer(self) -> torch.optim.Optimizer:
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "codebook" not in n]
        no_decay = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and "codebook" not in n)]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=self.cfg.betas)

    def _recover_interrupted_swap(self) -> None:
        old = self.run_dir / f".{self.stage}.old"
        if old.exists():
            if not self.ckpt_dir.exists():
                old.rename(self.ckpt_dir)  # died between the two renames: the old one is the last good one
            else:
                shutil.rmtree(old)

    @torch.no_grad()
    def _frozen_outputs_once(self) -> dict[str, list]:
        """What the frozen models make of every episode, computed once when it depends on each
        frame (or transition) alone, so that a clip's share is exactly a slice of it:
          tokens:  token ids [T, h, w] per episode per store (a per-frame tokenizer);
          latents: latent actions [T-1] (a per-transition LAM, clips without frame skip).
        Training reads them instead of running the frozen encoders on every batch."""
        tokenizer, lam = self.frozen.get("tokenizer"), self.frozen.get("lam")
        wanted = {"tokens": tokenizer is not None and not tokenizer.config.enc_temporal,
                  "latents": lam is not None and not lam.config.enc_temporal and self.cfg.frame_skip == 1}
        wanted = [name for name, ok in wanted.items() if ok]
        cache: dict[str, list] = {name: [[] for _ in self.dataset.stores] for name in wanted}
        if not wanted:
            return cache
        episodes = [(i, episode) for i, store in enumerate(self.dataset.stores) for episode in store]
        for store_idx, episode in tqdm(episodes, desc=f"{' and '.join(wanted)} of every episode, once", unit="ep",
                                       disable=not (self.progress and self.rank == 0), dynamic_ncols=True):
            frames_1THWC = torch.from_numpy(np.ascontiguousarray(resize_video(episode.frames, self.dataset.size)))[None]
            frames_1THWC = frames_1THWC.to(self.device)
            if "tokens" in cache:
                cache["tokens"][store_idx].append(tokenizer.encode_windows(frames_1THWC)[0].to(torch.int16))
            if "latents" in cache:
                cache["latents"][store_idx].append(lam.infer_actions_windows(frames_1THWC)[0].to(torch.int16))
        return cache

    # ------------------------------------------------------------------ batches
    def _cached(self, name: str, batch: dict) -> torch.Tensor:
        """The batch's clips' slices of a frozen-output cache (tokens: frames; latents: transitions)."""
        span, skip = self.dataset.span, self.dataset.frame_skip
        stop = span if name == "tokens" else span - 1
        clips = [self.frozen_outputs[name][s][e][start : start + stop : skip]
                 for s, e, start in zip(batch["source"].tolist(), batch["episode"].tolist(), batch["start"].tolist())]
        return torch.stack(clips).to(self.device, torch.long)

    def _prepare(self, batch: dict) -> dict:
        batch = self._with_frozen_outputs(batch)
        if self.model.pure_training_inputs and self.cfg.memo_gb > 0:
            return self._memoized_inputs(batch)
        return self._training_inputs(batch)

    def _with_frozen_outputs(self, batch: dict) -> dict:
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        for name in self.frozen_outputs:
            batch[name] = self._cached(name, batch)
        return batch

    def _training_inputs(self, batch: dict) -> dict:
        with self.autocast:
            return self.model.training_inputs(batch, self.frozen)

    def _memoized_inputs(self, batch: dict) -> dict:
        """training_inputs of the batch, computed only for clips not drawn before; the memo keeps
        each clip's share until it holds cfg.memo_gb (then new clips are computed every time)."""
        keys = list(zip(batch["source"].tolist(), batch["episode"].tolist(), batch["start"].tolist()))
        new_keys = list(dict.fromkeys(key for key in keys if key not in self.input_memo))
        fresh: dict[tuple[int, int, int], dict[str, torch.Tensor]] = {}
        if new_keys:
            index = torch.tensor([keys.index(key) for key in new_keys], device=self.device)
            inputs = self._training_inputs({k: v[index] if torch.is_tensor(v) else v for k, v in batch.items()})
            for row, key in enumerate(new_keys):
                fresh[key] = {k: v[row].clone() for k, v in inputs.items()}
                size = sum(v.nelement() * v.element_size() for v in fresh[key].values())
                if self.input_memo_bytes + size <= self.cfg.memo_gb * 2**30:
                    self.input_memo[key] = fresh[key]
                    self.input_memo_bytes += size
        rows = [fresh[key] if key in fresh else self.input_memo[key] for key in keys]
        return {k: torch.stack([row[k] for row in rows]) for k in rows[0]}

    def _loader(self) -> DataLoader:
        micro_total = self.cfg.steps * self.cfg.accum
        sampler = ShardedRange(self.step * self.cfg.accum, micro_total, self.cfg.batch_size, self.rank, self.world)
        return DataLoader(self.dataset, batch_size=self.cfg.batch_size, sampler=sampler,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict:
        """Train to cfg.steps; returns the last logged metrics. Metrics stay tensors until a log
        step, and so does the finiteness of the loss: a loss that turns NaN or inf is caught at
        the next log or checkpoint step, before anything is saved."""
        # A compiled kernel that fails to build falls back to eager code with a warning.
        with torch._dynamo.config.patch(suppress_errors=self.compiled):
            return self._train()

    def _train(self) -> dict:
        cfg = self.cfg
        is_main = self.rank == 0
        if is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self.progress:
                tqdm.write(self.dataset.mixture_summary(cfg.steps * cfg.accum * cfg.batch_size * self.world))
                if self.compiled:
                    tqdm.write("the first step compiles the transformer (about a minute on CPU, once)")
        tb = self._tensorboard() if is_main else None
        batches = iter(self._loader())
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.stage}", unit="step",
                   disable=not (self.progress and is_main), dynamic_ncols=True)
        logged: dict[str, float] = {}
        sums: dict[str, torch.Tensor] = {}
        steps_summed, finite, checked_at = 0, torch.ones((), dtype=torch.bool, device=self.device), self.step
        started, timed_from = (self.step, time.monotonic()), None
        self.model.train()
        while self.step < cfg.steps:
            # Per-step seeding makes masks and code restarts identical after a resume.
            torch.manual_seed(cfg.seed * 1_000_003 + self.step * self.world + self.rank)
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            for _ in range(cfg.accum):
                batch = self._prepare(next(batches))
                with self.autocast:
                    output = self.ddp(batch)
                finite &= torch.isfinite(output.loss)
                (output.loss / cfg.accum).backward()
                for k, v in output.metrics.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() / cfg.accum
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema_state is not None:
                self._update_ema()
            self.step += 1
            steps_summed += 1
            bar.update(1)
            if cfg.minutes:
                timed_from = self._keep_to_budget(started, timed_from, bar)
            last = self.step == cfg.steps
            log_now = self.step % cfg.log_every == 0 or last
            save_now = self.step % cfg.ckpt_every == 0 or last
            if log_now or save_now:
                if not bool(finite):
                    raise TrainingDiverged(
                        f"{self.stage} loss became NaN or inf between steps {checked_at} and {self.step}; stopped. The last "
                        f"good checkpoint in {self.ckpt_dir} is kept: lower --lr or raise --warmup, then --resume")
                checked_at = self.step
            if log_now:
                logged = {k: float(v) / steps_summed for k, v in sums.items()} | {"lr": lr}
                sums, steps_summed = {}, 0
                bar.set_postfix({k: f"{v:.4g}" for k, v in logged.items()
                                 if k in ("loss", "psnr", "perplexity", "token_accuracy", "changed_accuracy", "accuracy")})
                if is_main:
                    self._log(logged, tb)
            if cfg.sample_every and is_main and (self.step % cfg.sample_every == 0 or last):
                self._write_sample(batch, output)
            if save_now:
                self.save()
        bar.close()
        if tb is not None:
            tb.close()
        return logged

    def _keep_to_budget(self, started: tuple[int, float], timed_from: tuple[int, float] | None, bar) -> tuple[int, float] | None:
        """Start timing after the first steps; at every log step lower cfg.steps to what the budget
        holds at the rate measured since, or stop there once it is spent (every rank agrees on the
        lowest, at the same steps); returns the timing mark."""
        now = time.monotonic()
        if timed_from is None and self.step >= started[0] + BUDGET_SKIP:
            timed_from = (self.step, now)
        if self.step % self.cfg.log_every:
            return timed_from
        left = self.cfg.minutes * 60 - (now - started[1])
        if timed_from is not None and self.step - timed_from[0] >= BUDGET_TIMED:
            steps = fit_steps_to_budget(self.step, self.cfg, left, (self.step - timed_from[0]) / max(now - timed_from[1], 1e-9))
        else:
            steps = self.step if left <= 0 else self.cfg.steps
        if self.world > 1:
            agreed = torch.tensor(steps, device=self.device)
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
            steps = int(agreed)
        if steps < self.cfg.steps:
            self.cfg.steps = bar.total = steps
            bar.refresh()
        return timed_from

    def _tensorboard(self):
        # TensorBoard imports TensorFlow when it is installed (it is, for RLDS), and TensorFlow
        # in a process that renders MuJoCo with EGL segfaults. Its official switch to the
        # TF-free stub is the presence of the module `tensorboard.compat.notf`.
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a dependency; keep training if someone removed it
            return None
        return SummaryWriter(str(self.log_dir / "tensorboard"))

    def _log(self, row: dict, tb) -> None:
        path = self.log_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.writer(f)
            keys = sorted(row)
            if new:
                writer.writerow(["step", *keys])
            writer.writerow([self.step, *(f"{row[k]:.6g}" for k in keys)])
        if tb is not None:
            for k, v in row.items():
                tb.add_scalar(f"{self.stage}/{k}", v, self.step)

    def _write_sample(self, batch: dict, output) -> None:
        image = sample_image(batch, output.preview, self.frozen.get("tokenizer"))
        if image is not None:
            write_image(self.log_dir / "samples" / f"step_{self.step:07d}.png", image)

    def save(self) -> None:
        """Write the checkpoint to a temporary folder, then swap it in: a crash at any point
        leaves either the previous or the new checkpoint complete."""
        if self.rank == 0:
            tmp = self.run_dir / f".{self.stage}.tmp"
            old = self.run_dir / f".{self.stage}.old"
            shutil.rmtree(tmp, ignore_errors=True)
            save_model(self.model, tmp, self.ema_state)
            if self.ema_state is not None:
                save_tensors(self.model.state_dict(), tmp / "training_weights.safetensors")
            save_optimizer(self.optimizer, tmp)
            (tmp / "trainer_state.json").write_text(json.dumps({
                "step": self.step, "stage": self.stage, "train_config": dataclasses.asdict(self.cfg),
                "data": [f"{s.path}:{s.weight}" for s in self.dataset.sources], "world_size": self.world}, indent=2))
            if self.ckpt_dir.exists():
                self.ckpt_dir.rename(old)
            tmp.rename(self.ckpt_dir)
            shutil.rmtree(old, ignore_errors=True)
        if self.world > 1:
            dist.barrier()
