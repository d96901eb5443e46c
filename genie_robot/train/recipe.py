"""Training recipes: the schedule `genie-robot train STAGE --preset P` uses for every flag not
given. The small preset's recipe is the CPU one that `make demo` runs and
`benchmarks/quality.py` measures (README: "World-model quality"); other presets get `DEFAULT`.

Why the small recipe looks as it does (each measured on 2 CPU cores):
- tokenizer: frames are encoded and decoded one by one, so single-frame clips and a small batch
  buy many more optimizer steps for the same compute; the number of steps, not frames seen, is
  what the transformer autoencoder needed (4 frames x 300 steps: 25.6 dB; 16 x 75: 21.9 dB).
- lam: each transition is read and decoded on its own, so 2-frame clips.
- dynamics: full 16-frame clips, since it attends over time and rolls out 16 frames; as many
  steps as `make demo`'s 30 minutes allow, because it is step-bound: on the validation store
  (seed 3) 2800 steps gave +1.2 / +1.4 / +1.4 dB over copying at t = 4 / 8 / 16 against
  +0.8 / +1.0 / +0.9 at 1400. Clips of 8 frames buy 1.7x the steps, but 5100 such steps
  (11 minutes) gave +1.3 / +1.3 / +0.8 dB against +1.6 / +1.8 / +1.2 for 4000 of 16 frames
  (16 minutes): lower at every horizon, most at t = 16.
  Its objective is the small preset's (models/dynamics.py): on the validation store, MaskGIT's
  cosine mask rates lifted +1.1 / +1.4 / +0.8 dB to +1.6 / +1.8 / +1.2 (Delta_4 0.39 -> 0.83),
  and changed tokens weighted x8 instead of x4 to +1.6 / +2.0 / +1.2 (Delta_4 1.20).
- all stages train under bf16 autocast where the CPU has bf16 matmuls (trainer's "auto"):
  1.3x (tokenizer) to 1.5x (LAM, dynamics) more steps in the same time. On the validation store,
  dynamics with bf16 for 2800 steps against fp32 for 2000 in the same 15 minutes: +1.0 / +1.4 /
  +1.5 dB over copying at t = 4 / 8 / 16 against +0.8 / +1.4 / +1.2, Delta_4 0.47 against 0.10.
  The tokenizer keeps its 2600 steps (its figures were past their targets) and gives the time
  it saves to the dynamics; the LAM takes its speed-up as steps (2000).
- the arm world records at 5 Hz (sim/world.py), so simulating a frame costs twice the physics:
  `make demo`'s generation takes 1.9 instead of 1.4 minutes. Paid for by the LAM's encoder skipping the
  first frame of each 2-frame clip, whose query was never used (1.3x a LAM step, same 2000
  steps), and by 3400 dynamics steps instead of 3800.
- the dynamics transformer is compiled (`torch.compile`, about a minute once): 4.3 steps/s
  against 3.7 eager, so 3800 steps fit where 3000 did. Not the tokenizer and LAM: their steps
  are short (1.2x compiled), and compiling would cost what it saves.
- dynamics checkpoints hold an exponential moving average of its weights (decay 0.999, about
  the last 1000 steps; trainer.py), free in time: its single-clip steps are noisy. On the first
  16 episodes of `val32.h5`, the demo's dynamics run again with the average against its own
  weights: +0.39 / +1.98 / +1.61 / +1.47 dB over copying at t = 1 / 4 / 8 / 16 against +0.24 /
  +1.76 / +1.67 / +1.50, Delta_4 0.83 against 0.67, arm IoU t = 8 0.44 against 0.43; on a model
  trained with clean_frames 0.3 the average against that model's own weights: +0.48 / +1.99 /
  +1.46 / +1.48 against +0.37 / +1.85 / +1.38 / +1.25, Delta_4 0.75 against 0.60. On all 32
  episodes, sampling seeds 0 and 1: Delta_4 0.91 / 1.02 against 0.80 / 0.88, t = 4 +1.66 /
  +1.56 against +1.48 / +1.39 dB. Held out it reads level (README: "The moving average").
- adapter (every preset): a small MLP on 4 command values, on latent actions the frozen LAM
  reads once per episode, so steps are nearly free: 1500 steps of 16 eight-frame clips (chosen
  on the validation store, seed 3: command -> latent 52% at 400 steps, 54% at 1500, 53% at
  4000, majority 27%).
- probe (every preset, optional, not in `make demo`): a small CNN on single frames, 1500 steps
  of 64 (3.3 minutes at 7.6 steps/s on the demo's two stores); the hand in the validation
  store's goal frames reads 2.0 cm from where it was recorded (median 1.2 cm)."""
from __future__ import annotations

DEFAULT = dict(steps=1000, batch_size=8, clip_len=16, warmup=100, lr=3e-4, compile=False, ema=0.0)
ADAPTER = dict(steps=1500, batch_size=16, clip_len=8, warmup=20, lr=3e-3, compile=False, ema=0.0)
PROBE = dict(steps=1500, batch_size=64, clip_len=1, warmup=50, lr=2e-3, compile=False, ema=0.0)
EVERY_PRESET = {"adapter": ADAPTER, "probe": PROBE}  # small models of their own: one schedule serves every preset

_SMALL_MODELS = {
    "tokenizer": dict(steps=2600, batch_size=4, clip_len=1, warmup=50, lr=1e-3),
    "lam": dict(steps=2000, batch_size=16, clip_len=2, warmup=50, lr=1e-3),
    "dynamics": dict(steps=3400, batch_size=1, clip_len=16, warmup=50, lr=1e-3, compile=True, ema=0.999),
}
RECIPES: dict[str, dict[str, dict]] = {
    "small": _SMALL_MODELS,
    "tiny": {stage: dict(lr=1e-3) for stage in _SMALL_MODELS},
}


def recipe(preset: str, stage: str) -> dict:
    """steps, batch_size, clip_len, warmup, lr, compile and ema for `stage` under `preset`."""
    if stage in EVERY_PRESET:
        return dict(EVERY_PRESET[stage])
    return {**DEFAULT, **RECIPES.get(preset, {}).get(stage, {})}
