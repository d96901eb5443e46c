"""One trainer for the three Genie stages (tokenizer, lam, dynamics).

AdamW with linear warmup + cosine decay, gradient clipping and accumulation, bf16 autocast
on CUDA, DistributedDataParallel under torchrun (data sharded by rank), checkpoints as
folders (safetensors + JSON, swapped in atomically), exact resume, CSV + TensorBoard logs,
a progress bar and periodic sample images.

Run layout:  RUN/<stage>/            last checkpoint (config.json, model.safetensors,
                                     optimizer.safetensors, optimizer.json, trainer_state.json)
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
import types
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
from genie_robot.models import MODELS
from genie_robot.train.checkpoint import (check_compatible, load_model, load_optimizer, load_run_models, save_model,
                                         save_optimizer)

STAGES = ("tokenizer", "lam", "dynamics")


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
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 (autocast)

    def __post_init__(self):
        for name in ("steps", "batch_size", "clip_len", "frame_skip", "accum", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training config: {name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"training config: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.warmup < 0:
            raise ConfigError("training config: lr must be > 0 and warmup >= 0")
        self.betas = tuple(self.betas)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


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


def resolve_device(choice: str, rank: int = 0) -> torch.device:
    """auto | cpu | cuda -> a device; asking for CUDA without one is a clear error."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but no CUDA device is available; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    return torch.device(choice)


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
        self.frozen = self._frozen_models(model_config)
        image_size = self._image_size(model_config)
        self.dataset = ClipDataset(data_sources, clip_len=cfg.clip_len, frame_skip=cfg.frame_skip,
                                   size=image_size, seed=cfg.seed, with_actions=False)
        self._recover_interrupted_swap()
        self.step = 0
        if self.ckpt_dir.exists() and not resume:
            raise CheckpointError(f"{self.ckpt_dir} already holds a {stage} checkpoint; pass --resume to "
                                  "continue it, or choose another --out (nothing was overwritten)")
        if resume and (self.ckpt_dir / "trainer_state.json").exists():
            self.model = load_model(self.ckpt_dir, stage, expect_config=model_config, device=str(self.device))
            self.optimizer = self._optimizer()
            load_optimizer(self.optimizer, self.ckpt_dir)
            self.step = json.loads((self.ckpt_dir / "trainer_state.json").read_text())["step"]
        else:
            torch.manual_seed(cfg.seed)
            self.model = MODELS[stage][1](model_config).to(self.device)
            self.optimizer = self._optimizer()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.token_cache = self._tokenize_once()
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device.type == "cuda")
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    # ------------------------------------------------------------------ setup
    def _frozen_models(self, model_config) -> dict:
        """Dynamics trains on tokens and latent actions from the run's tokenizer and LAM."""
        if self.stage != "dynamics":
            return {}
        frozen = load_run_models(self.run_dir, ("tokenizer", "lam"), "dynamics training", str(self.device))
        check_compatible(model_config, frozen["tokenizer"].config, frozen["lam"].config)
        return frozen

    def _image_size(self, model_config) -> int:
        if self.stage == "dynamics":
            return self.frozen["tokenizer"].config.image_size
        return model_config.image_size

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
    def _tokenize_once(self) -> list | None:
        """Token ids of every episode, [T, h, w] per episode per store, when the tokenizer encodes
        frames one by one (then a clip's tokens are exactly its frames' tokens): dynamics
        training reads them instead of running the frozen encoder on every batch."""
        if self.stage != "dynamics" or self.frozen["tokenizer"].config.enc_temporal:
            return None
        tokenizer, size = self.frozen["tokenizer"], self.dataset.size
        episodes = [(i, episode) for i, store in enumerate(self.dataset.stores) for episode in store]
        cache: list[list] = [[] for _ in self.dataset.stores]
        chunk = tokenizer.config.max_frames
        for store_idx, episode in tqdm(episodes, desc="tokenize episodes", unit="ep",
                                       disable=not (self.progress and self.rank == 0), dynamic_ncols=True):
            frames = resize_video(episode.frames, size)
            parts = [tokenizer.encode(torch.from_numpy(np.ascontiguousarray(frames[s : s + chunk]))[None].to(self.device))[0]
                     for s in range(0, len(frames), chunk)]
            cache[store_idx].append(torch.cat(parts).to(torch.int16))
        return cache

    # ------------------------------------------------------------------ batches
    def _tokens(self, batch: dict, video: torch.Tensor) -> torch.Tensor:
        if self.token_cache is None:
            return self.frozen["tokenizer"].encode(video)
        span, skip = self.dataset.span, self.dataset.frame_skip
        clips = [self.token_cache[s][e][start : start + span : skip]
                 for s, e, start in zip(batch["source"].tolist(), batch["episode"].tolist(), batch["start"].tolist())]
        return torch.stack(clips).to(self.device, torch.long)

    def _prepare(self, batch: dict) -> dict:
        video = batch["video"].to(self.device, non_blocking=True)
        if self.stage != "dynamics":
            return {"video": video}
        with self.autocast:
            tokens = self._tokens(batch, video)
            actions = self.frozen["lam"].infer_actions(video)
        return {"tokens": tokens, "actions": actions, "video": video}

    def _loader(self) -> DataLoader:
        micro_total = self.cfg.steps * self.cfg.accum
        sampler = ShardedRange(self.step * self.cfg.accum, micro_total, self.cfg.batch_size, self.rank, self.world)
        return DataLoader(self.dataset, batch_size=self.cfg.batch_size, sampler=sampler,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict:
        cfg = self.cfg
        is_main = self.rank == 0
        if is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        tb = self._tensorboard() if is_main else None
        batches = iter(self._loader())
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.stage}", unit="step",
                   disable=not (self.progress and is_main), dynamic_ncols=True)
        metrics: dict = {}
        sums: dict[str, float] = {}  # stays empty when the run is already at cfg.steps
        self.model.train()
        while self.step < cfg.steps:
            # Per-step seeding makes masks and code restarts identical after a resume.
            torch.manual_seed(cfg.seed * 1_000_003 + self.step * self.world + self.rank)
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            sums = {}
            for _ in range(cfg.accum):
                batch = self._prepare(next(batches))
                with self.autocast:
                    loss, metrics = self.ddp(batch)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"{self.stage} loss became {loss.item()} at step {self.step}; stopped. The last good "
                        f"checkpoint in {self.ckpt_dir} is kept: lower --lr or raise --warmup, then --resume")
                (loss / cfg.accum).backward()
                for k, v in metrics.items():
                    if not k.startswith("_"):
                        sums[k] = sums.get(k, 0.0) + v / cfg.accum
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            sums.update(lr=lr, grad_norm=float(grad_norm))
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in sums.items() if k in ("loss", "psnr", "perplexity", "token_accuracy", "changed_accuracy")})
            if is_main and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                self._log(sums, tb)
            if cfg.sample_every and is_main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self._write_sample(batch, metrics)
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        if tb is not None:
            tb.close()
        return sums

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

    def _write_sample(self, batch: dict, metrics: dict) -> None:
        from genie_robot.train.samples import sample_image

        image = sample_image(self.stage, batch, metrics, self.frozen.get("tokenizer"))
        write_image(self.log_dir / "samples" / f"step_{self.step:07d}.png", image)

    def save(self) -> None:
        """Write the checkpoint to a temporary folder, then swap it in: a crash at any point
        leaves either the previous or the new checkpoint complete."""
        if self.rank == 0:
            tmp = self.run_dir / f".{self.stage}.tmp"
            old = self.run_dir / f".{self.stage}.old"
            shutil.rmtree(tmp, ignore_errors=True)
            save_model(self.model, tmp)
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
