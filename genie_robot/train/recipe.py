"""Training recipes: the schedule `genie-robot train STAGE --preset P` uses for every flag not
given. The small preset's recipe is the CPU one that `make demo` runs and
`benchmarks/quality.py` measures (README: "World-model quality"); other presets get `DEFAULT`.

Why the small recipe looks as it does (each measured on 2 CPU cores):
- tokenizer: frames are encoded and decoded one by one, so single-frame clips and a small batch
  buy many more optimizer steps for the same compute; the number of steps, not frames seen, is
  what the transformer autoencoder needed (4 frames x 300 steps: 25.6 dB; 16 x 75: 21.9 dB).
- lam: each transition is read and decoded on its own, so 2-frame clips.
- dynamics: full 16-frame clips, since it attends over time and rolls out 16 frames."""
from __future__ import annotations

DEFAULT = dict(steps=1000, batch_size=8, clip_len=16, warmup=100)

RECIPES: dict[str, dict[str, dict]] = {
    "small": {
        "tokenizer": dict(steps=3000, batch_size=4, clip_len=1, warmup=50),
        "lam": dict(steps=1500, batch_size=16, clip_len=2, warmup=50),
        "dynamics": dict(steps=1400, batch_size=1, clip_len=16, warmup=50),
    },
}


def recipe(preset: str, stage: str) -> dict:
    """steps, batch_size, clip_len and warmup for `stage` under `preset`."""
    return {**DEFAULT, **RECIPES.get(preset, {}).get(stage, {})}
