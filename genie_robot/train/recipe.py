"""Training recipes: the schedule `genie-robot train STAGE --preset P` uses for every flag not
given. The small preset's recipe is the CPU one that `make demo` runs and
`benchmarks/quality.py` measures; other presets get `DEFAULT`. The measurements behind each
choice are in docs/experiments/small_recipe.md.

Why the small recipe looks as it does:
- tokenizer: frames are encoded and decoded one by one, so single-frame clips and a small batch
  buy many more optimizer steps for the same compute; the number of steps, not frames seen, is
  what the transformer autoencoder needs.
- lam: each transition is read and decoded on its own, so 2-frame clips.
- dynamics: full 16-frame clips, since it attends over time and rolls out 16 frames, and as many
  steps as `make demo`'s time allows: at this budget the dynamics is step-bound (shorter clips
  buy more steps but score lower at every horizon). Its objective is the small preset's
  (models/dynamics.py: per-frame cosine mask rates, changed tokens weighted).
- all stages train under bf16 autocast where the CPU has bf16 matmuls (trainer's "auto"), which
  buys more steps in the same time; the tokenizer gives its saving to the dynamics, the LAM
  takes it as steps.
- the arm world records at 5 Hz (sim/world.py), so a frame costs twice the physics; paid for
  by the LAM's encoder skipping the first frame of each 2-frame clip, whose query is never
  used, and by fewer dynamics steps.
- the dynamics transformer is compiled (`torch.compile`, compiled once per run): its steps are
  long enough for compiling to pay. Not the tokenizer and LAM: their steps are short, and
  compiling would cost about what it saves.
- dynamics checkpoints hold an exponential moving average of its weights (decay 0.999, about
  the last 1000 steps; trainer.py), free in time: its single-clip steps are noisy.
- adapter (every preset): a small MLP on 4 command values, on latent actions the frozen LAM
  reads once per episode, so steps are nearly free.
- probe (every preset, optional, not in `make demo`): a small CNN on single frames."""
from __future__ import annotations

DEFAULT = dict(steps=1000, batch_size=8, clip_len=16, warmup=100, lr=3e-4, compile=False, ema=0.0)
ADAPTER = dict(steps=1500, batch_size=16, clip_len=8, warmup=20, lr=3e-3, compile=False, ema=0.0)
PROBE = dict(steps=1500, batch_size=64, clip_len=1, warmup=50, lr=2e-3, compile=False, ema=0.0)
EVERY_PRESET = {"adapter": ADAPTER, "probe": PROBE}  # small models of their own: one schedule serves every preset

_SMALL_MODELS = {
    "tokenizer": dict(steps=2600, batch_size=4, clip_len=1, warmup=50, lr=1e-3),
    "lam": dict(steps=2000, batch_size=16, clip_len=2, warmup=50, lr=1e-3),
    "dynamics": dict(steps=6000, batch_size=1, clip_len=16, warmup=50, lr=1e-3, compile=True, ema=0.999),
    # The change-token world model (docs/experiments/change_tokens.md): the tokenizer unrolls its
    # reading over 4 steps; the dynamics' clips fill its 16-frame window with a change out of each.
    "change_tokenizer": dict(steps=4000, batch_size=8, clip_len=5, warmup=50, lr=1e-3),
    "change_dynamics": dict(steps=3000, batch_size=8, clip_len=17, warmup=50, lr=1e-3),
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
