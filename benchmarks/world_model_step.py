"""Milliseconds per generated frame of the world model against what this machine can do.

One step = MaskGIT decoding of the new frame's tokens + its decode to pixels (what `play`
does per key press). The timed step always follows a generated frame, as in a running session,
so it pays for taking that frame into the caches ("history" counts it: >= 2). Printed, all
from one run:
  - the matmul peak of this machine (fp32 and bf16 GFLOP/s of a 1024^3 matmul);
  - per preset, MaskGIT steps and precision: ms per frame at each history length (temporal
    KV cache on, and off for fp32), at full memory (the oldest frame dropped and the caches
    rebuilt, every step of a long session), frames/s, the FLOPs of one generated frame
    (counted by torch's FLOP counter from the model's shapes) and achieved / peak;
  - bf16 against fp32: token agreement under greedy sampling and frame PSNR, over a rollout;
  - batched imagination for planning: candidate sequences per second for a population.

Usage: python benchmarks/world_model_step.py [--presets tiny small] [--maskgit-steps 8 25]
       [--history 2 16] [--repeats 5] [--run out/demo/run] [--population 32 --horizon 8]
       python benchmarks/world_model_step.py --quick     (tiny preset, seconds: CI)
Untrained weights unless --run gives a trained run (timing does not depend on them; agreement
does: near-uniform untrained logits flip under any rounding). The models' window is raised to
17 frames so that a history of 16 frames plus the new one fits."""
import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from genie_robot.eval.metrics import psnr
from genie_robot.models import MODELS
from genie_robot.models.run import Run
from genie_robot.models.world_model import WorldModel
from genie_robot.sampling import SamplingConfig


def matmul_peak_gflops(dtype: torch.dtype, size: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm up
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - began) / 1e9


def build(preset: str, device: str, max_frames: int, run: str | None) -> WorldModel:
    if run:
        return Run.load(run, device).world_model()
    torch.manual_seed(0)
    models = {kind: MODELS[kind][1](MODELS[kind][0].preset(preset, max_frames=max_frames)).to(device)
              for kind in ("tokenizer", "dynamics")}
    return WorldModel(models["tokenizer"], models["dynamics"])


def prompt(wm: WorldModel, frames: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, wm.image_size, wm.image_size, 3), dtype=np.uint8)


def session(wm: WorldModel, history: int, steps: int, cached: bool, seed: int = 0, temperature: float = 0.5):
    """A session holding `history` frames of which the last was generated, as in any step of a
    running session: the timed step then also pays for taking that frame into the caches."""
    s = wm.start(prompt(wm, history - 1), prompt_actions=np.zeros(history - 2, np.int64), seed=seed,
                 sampling=SamplingConfig(steps=steps, temperature=temperature), use_cache=cached)
    s.step(0)
    return s


def ms_per_frame(wm: WorldModel, history: int, steps: int, cached: bool, repeats: int) -> float:
    times = []
    for r in range(repeats + 1):  # the first run warms up
        s = session(wm, history, steps, cached, seed=r)
        began = time.perf_counter()
        s.step(1)
        if wm.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times[1:])


def ms_at_full_memory(wm: WorldModel, steps: int, repeats: int) -> float:
    """A step of a session whose memory is full: it drops the oldest frame and rebuilds its
    caches from the remembered ones (positions in time are absolute): play's steady state."""
    memory, times = wm.max_memory - 1, []
    for r in range(repeats + 1):
        s = wm.start(prompt(wm, memory - 1), prompt_actions=np.zeros(memory - 2, np.int64), seed=r,
                     sampling=SamplingConfig(steps=steps), memory=memory)
        s.step(0)  # fills the memory
        began = time.perf_counter()
        s.step(1)
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times[1:])


def flops_per_frame(wm: WorldModel, history: int, steps: int) -> float:
    s = session(wm, history, steps, cached=True)
    with FlopCounterMode(display=False) as counter:
        s.step(1)
    return counter.get_total_flops()


def bf16_agreement(wm: WorldModel, steps: int, frames: int) -> tuple[float, float]:
    """Greedy rollouts from one prompt in fp32 and bf16: share of equal tokens, mean frame PSNR."""
    runs = {}
    for precision in ("fp32", "bf16"):
        wm.precision = precision
        s = session(wm, 2, steps, cached=True, temperature=0.0)
        video = s.rollout(np.arange(frames) % wm.num_actions)
        runs[precision] = (s.tokens_BThw[0, 1:].clone(), video)
    wm.precision = "fp32"
    agreement = float((runs["fp32"][0] == runs["bf16"][0]).float().mean())
    return agreement, float(np.mean(np.minimum(psnr(runs["fp32"][1], runs["bf16"][1]), 100.0)))


def candidates_per_second(wm: WorldModel, population: int, horizon: int, steps: int) -> float:
    actions = np.random.default_rng(0).integers(0, wm.num_actions, (population, horizon))
    sampling = SamplingConfig(steps=steps)
    wm.imagine(prompt(wm, 1), actions[:2, :1], sampling=sampling)  # warm up
    began = time.perf_counter()
    wm.imagine(prompt(wm, 1), actions, sampling=sampling)
    return population / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=list(MODELS["dynamics"][0].presets))
    parser.add_argument("--maskgit-steps", nargs="+", type=int, default=[8, 25])
    parser.add_argument("--history", nargs="+", type=int, default=[2, 16],
                        help="frames remembered at the timed step, the last one generated (so >= 2)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--run", help="a trained run (its preset replaces --presets)")
    parser.add_argument("--population", type=int, default=32, help="candidate sequences imagined in one batch")
    parser.add_argument("--horizon", type=int, default=8, help="frames each candidate imagines")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 and 8 steps, history 2 and 4 (CI)")
    args = parser.parse_args()
    if min(args.history) < 2:
        parser.error("--history counts the frames at the timed step, the last of them generated: give values >= 2")
    if args.quick:
        args.presets, args.maskgit_steps, args.history, args.repeats = ["tiny"], [1, 8], [2, 4], 1
        args.population, args.horizon = 4, 2
    peak = {"fp32": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}
    print(f"device {args.device}, {torch.get_num_threads()} threads; matmul peak (1024^3): "
          f"fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s; ms per generated frame, median of {args.repeats}")
    header = " ".join(f"{'h=' + str(h):>8}" for h in args.history)
    print(f"{'preset':7} {'steps':>5} {'prec':>5} {'cache':>5} {header} {'h' + str(args.history[-1]) + '/h' + str(args.history[0]):>8} "
          f"{'full':>8} {'frames/s':>9} {'GFLOP/frame':>12} {'of peak':>8}")
    for preset in ([f"run {args.run}"] if args.run else args.presets):
        wm = build(preset, args.device, max(args.history) + 1, args.run)
        max_history = wm.max_memory - 1
        history = [min(h, max_history) for h in args.history]
        for steps in args.maskgit_steps:
            flops = flops_per_frame(wm, history[-1], steps)
            for precision in args.precisions:
                wm.precision = precision
                for cached in (True, False) if precision == "fp32" else (True,):
                    ms = [ms_per_frame(wm, h, steps, cached, args.repeats) for h in history]
                    full = ms_at_full_memory(wm, steps, args.repeats) if cached else float("nan")
                    achieved = flops / (ms[-1] / 1000) / 1e9
                    print(f"{preset:7} {steps:5d} {precision:>5} {'on' if cached else 'off':>5} "
                          + " ".join(f"{m:8.1f}" for m in ms) + f" {ms[-1] / ms[0]:8.2f} {full:8.1f} {1000 / ms[-1]:9.1f} "
                          + f"{flops / 1e9:12.2f} {achieved / peak[precision]:8.0%}", flush=True)
            wm.precision = "fp32"
        if "bf16" in args.precisions:
            agreement, frame_psnr = bf16_agreement(wm, args.maskgit_steps[0], frames=min(8, max_history))
            print(f"{preset:7} bf16 vs fp32, greedy, {args.maskgit_steps[0]} steps: token agreement {agreement:.1%}, "
                  f"frame PSNR {frame_psnr:.1f} dB")
        rate = candidates_per_second(wm, args.population, args.horizon, args.maskgit_steps[0])
        print(f"{preset:7} planning: {rate:.1f} candidates/s (population {args.population} in one batch, "
              f"{args.horizon} frames each, {args.maskgit_steps[0]} MaskGIT steps)")


if __name__ == "__main__":
    main()
