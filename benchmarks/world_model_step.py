"""Milliseconds per generated frame of the world model: presets x MaskGIT steps x history
length, with and without the temporal KV cache. One step = MaskGIT decoding of the new
frame's tokens + its decode to pixels (what `play` does per key press).

Usage: python benchmarks/world_model_step.py [--presets tiny small] [--maskgit-steps 1 8 25]
       [--history 1 4 8 16] [--repeats 3]
       python benchmarks/world_model_step.py --quick     (tiny preset, seconds: CI)
Untrained weights (timing does not depend on them). The models' window is raised to 17 frames
so that a history of 16 frames plus the new one fits."""
import argparse
import statistics
import time

import numpy as np
import torch

from genie_robot.models import MODELS
from genie_robot.models.world_model import WorldModel
from genie_robot.sampling import SamplingConfig


def build(preset: str, device: str, max_frames: int) -> WorldModel:
    torch.manual_seed(0)
    models = {kind: MODELS[kind][1](MODELS[kind][0].preset(preset, max_frames=max_frames)).to(device)
              for kind in ("tokenizer", "dynamics")}
    return WorldModel(models["tokenizer"], models["dynamics"])


def ms_per_frame(wm: WorldModel, history: int, steps: int, cached: bool, repeats: int) -> float:
    prompt = np.random.default_rng(0).integers(0, 256, (history, wm.image_size, wm.image_size, 3), dtype=np.uint8)
    times = []
    for r in range(repeats + 1):  # the first run warms up
        session = wm.start(prompt, prompt_actions=np.zeros(history - 1, np.int64), seed=r,
                           sampling=SamplingConfig(steps=steps), use_cache=cached)
        began = time.perf_counter()
        session.step(1)
        if wm.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--maskgit-steps", nargs="+", type=int, default=[1, 8, 25])
    parser.add_argument("--history", nargs="+", type=int, default=[1, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 and 8 steps, history 1 and 4")
    args = parser.parse_args()
    if args.quick:
        args.presets, args.maskgit_steps, args.history, args.repeats = ["tiny"], [1, 8], [1, 4], 1
    print(f"device {args.device}, {torch.get_num_threads()} threads; ms per generated frame (median of {args.repeats})")
    print(f"{'preset':7} {'steps':>5} {'cache':>6} " + " ".join(f"{'h=' + str(h):>9}" for h in args.history)
          + f" {'h' + str(args.history[-1]) + '/h' + str(args.history[0]):>9} {'speedup':>8}")
    for preset in args.presets:
        wm = build(preset, args.device, max(args.history) + 1)
        for steps in args.maskgit_steps:
            row = {}
            for cached in (True, False):
                row[cached] = [ms_per_frame(wm, h, steps, cached, args.repeats) for h in args.history]
            for cached in (True, False):
                ms = row[cached]
                speedup = f"{row[False][-1] / row[True][-1]:8.2f}x" if cached else ""
                print(f"{preset:7} {steps:5d} {'on' if cached else 'off':>6} " + " ".join(f"{m:9.1f}" for m in ms)
                      + f" {ms[-1] / ms[0]:9.2f} {speedup}", flush=True)


if __name__ == "__main__":
    main()
