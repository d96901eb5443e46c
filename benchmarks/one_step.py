"""Where one imagined step is lost: from a true frame and the LAM's action for the transition
that follows it, the world model imagines the next frame once per token draw; each is scored
against the tokens and the frame of the truth.

Printed per draw (and temperature): the share of token positions whose true token changed from
the prompt frame to the next; token accuracy on the positions that did not change and on the
ones that did (and how often the imagined token kept the prompt's there); PSNR of the imagined
frame, of the tokenizer's reconstruction of the truth (the ceiling), of the truth's unchanged
tokens with the imagined changed ones (what the changes alone cost), and of copying the prompt.

Usage: python benchmarks/one_step.py [--run out/demo/run] [--data out/quality/data/val32.h5] [--episodes 16]
       python benchmarks/one_step.py --quick      (untrained tiny run: keeps the script alive in CI)"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from planning import quick_run_and_data

from genie_robot.data.store import EpisodeStore
from genie_robot.eval.metrics import psnr
from genie_robot.models.run import Run
from genie_robot.sampling import DRAWS, SamplingConfig

STARTS = (0, 8, 16, 24)  # prompt frames per episode (those an episode holds)


def one_step(wm, frames: np.ndarray, start: int, sampling: SamplingConfig, seed: int) -> dict:
    tokens_Thw = wm.tokenize(frames[start:start + 2])
    before, after = tokens_Thw[0], tokens_Thw[1]
    action = int(wm.infer_actions(frames[start:start + 2])[0])
    session = wm.start(frames[start:start + 1], seed=seed, sampling=sampling)
    imagined_frame = session.step(action)
    imagined = session.tokens_BThw[0, -1]
    still = after == before
    truth_elsewhere = torch.where(still, after, imagined)
    truth = frames[start + 1]
    return {
        "changed_share": (~still).float().mean().item(),
        "accuracy_unchanged": (imagined[still] == after[still]).float().mean().item(),
        "accuracy_changed": (imagined[~still] == after[~still]).float().mean().item() if (~still).any() else np.nan,
        "kept_prompt_token": (imagined[~still] == before[~still]).float().mean().item() if (~still).any() else np.nan,
        "psnr_imagined": float(psnr(imagined_frame, truth)),
        "psnr_reconstruction": float(psnr(wm.detokenize(tokens_Thw)[1], truth)),
        "psnr_true_unchanged": float(psnr(wm.detokenize(torch.stack([before, truth_elsewhere]))[1], truth)),
        "psnr_copy": float(psnr(frames[start], truth)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="out/demo/run")
    parser.add_argument("--data", default="out/quality/data/val32.h5", help="episodes not trained on (validation)")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--maskgit-steps", type=int, default=8)
    parser.add_argument("--settings", nargs="+", default=["sample:0.5", "sample:0", "median:0.5", "median:1"],
                        help="DRAW:TEMPERATURE pairs")
    parser.add_argument("--quick", action="store_true", help="untrained tiny run, 2 episodes (CI)")
    args = parser.parse_args()
    if args.quick:
        args.run, args.data = quick_run_and_data(Path(tempfile.mkdtemp(prefix="one_step_quick_")))
        args.episodes = 2
    settings = []
    for setting in args.settings:
        draw, _, temperature = setting.partition(":")
        if draw not in DRAWS or not temperature:
            parser.error(f"--settings takes DRAW:TEMPERATURE with DRAW in {', '.join(DRAWS)}, got {setting!r}")
        settings.append((draw, float(temperature)))
    wm = Run.load(args.run).world_model()
    store = EpisodeStore(args.data)
    rows = {setting: [] for setting in settings}
    for index in range(min(args.episodes, len(store))):
        frames = store[index].read_frames()
        for start in (s for s in STARTS if s + 1 < len(frames)):
            for draw, temperature in settings:
                sampling = SamplingConfig(steps=args.maskgit_steps, temperature=temperature, draw=draw)
                rows[(draw, temperature)].append(one_step(wm, frames, start, sampling, seed=index))
    print("| draw, temperature | changed share | accuracy unchanged | accuracy changed (kept prompt's) "
          "| PSNR imagined | reconstruction | truth unchanged + imagined changes | copy |")
    print("|---|---|---|---|---|---|---|---|")
    for (draw, temperature), row in rows.items():
        mean = {key: np.nanmean([r[key] for r in row]) for key in row[0]}
        print(f"| {draw}, {temperature:g} | {mean['changed_share']:.3f} | {mean['accuracy_unchanged']:.3f} | "
              f"{mean['accuracy_changed']:.3f} ({mean['kept_prompt_token']:.3f}) | {mean['psnr_imagined']:.2f} dB | "
              f"{mean['psnr_reconstruction']:.2f} | {mean['psnr_true_unchanged']:.2f} | {mean['psnr_copy']:.2f} |")
    print(f"{len(next(iter(rows.values())))} transitions from {args.data}, {args.maskgit_steps} MaskGIT steps")


if __name__ == "__main__":
    main()
