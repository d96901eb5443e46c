"""The change-token world model against MuJoCo: do imagined pushes move objects, and does the arm
follow its actions? (docs/experiments/change_tokens.md)

Reads a run with a LAM, a change tokenizer and a change dynamics model (`genie-robot train
change_tokenizer` / `change_dynamics`) and MuJoCo stores of held-out episodes; for each store:
- predicted interactions one step ahead, as `genie-robot eval` reports them for the
  video world model. On every transition where MuJoCo moves an object, the next frame is imagined
  from real frames t-2..t with the LAM's action of the real transition, and with a random one;
  the share of MuJoCo's motion each shows (1 = as MuJoCo, 0 = it stayed), beside the true next
  frame and the tokenizer's reading of it (the ceiling), and the lag fit. Also a picture of the
  store's largest 4-step push: true frames | imagined with the LAM's actions | with random ones.
- teacher-forced token accuracy: on the tokenizer's reading of each episode, the dynamics'
  first MaskGIT guess (every token of a frame masked, earlier frames known) against the tokens
  the tokenizer read, on cells where pixels changed and on cells an object moved through, with
  the LAM's actions and with them shuffled in time (a model that ignores its actions scores alike).
- rollouts of 16 frames from each episode's first frame with the LAM's actions and with
  random ones: imagined minus copying the first frame (PSNR of the episodes' mean squared error)
  at t = 1 / 4 / 8 / 16, Delta_4 PSNR (LAM minus random actions, the mean of per-episode PSNRs) and
  the imagined arm's mask IoU at t = 8 beside copying the first frame.

Usage: python benchmarks/change_tokens.py [--run out/demo/run] [--data A.h5 B.h5] [--out OUT]
       python benchmarks/change_tokens.py --quick   (tiny models on a tiny store: keeps it alive in CI)
Without --data, the protocol's held-out stores are made in OUT/data (12 scripted pushes of seed
102, 8 mixed-policy episodes of seed 101, 32 frames at 64x64), or reused if there.
Writes OUT/change_tokens.json and OUT/<store>/push.png."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genie_robot.data.store import EpisodeStore
from genie_robot.data.transforms import resize_masks, resize_video
from genie_robot.eval.metrics import mse, psnr_of_mse
from genie_robot.eval.physics import (
    MOVABLE,
    TRACKED,
    ColourSegmenter,
    lag_fit,
    largest_push,
    mask_iou,
    motion_shown,
    object_moves,
    shown_steps,
)
from genie_robot.eval.report import CONTEXT, PUSH_STEPS, push_shown
from genie_robot.io import atomic_path
from genie_robot.models.change_tokenizer import changed_cells, channels_first
from genie_robot.models.run import Run
from genie_robot.sampling import DRAWS, ORDERS, SamplingConfig

HORIZONS = (1, 4, 8, 16)
ARM_ID = next(i for i, name in TRACKED.items() if i not in MOVABLE)


class ChangeWorld:
    """A run's change-token world model, with one sampling setting."""

    def __init__(self, run_dir, sampling: SamplingConfig, seed: int = 0):
        self.run_dir = run_dir
        self.wm = Run.load(run_dir, stages=("lam", "change_tokenizer", "change_dynamics")).world_model("change")
        self.size, self.num_actions = self.wm.image_size, self.wm.num_actions
        self.sampling, self.seed = sampling, seed

    def episode(self, episode) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, masks at the model's size, the LAM's actions)."""
        frames = resize_video(episode.read_frames(), self.size)
        return frames, resize_masks(episode.masks[:], self.size), self.wm.infer_actions(frames)

    def read(self, videos, actions) -> np.ndarray:
        """The tokenizer's reading of videos [B, T, H, W, 3] from their first frames, in one batch."""
        return self.wm.tokenizer.read(torch.from_numpy(np.stack(videos)), torch.from_numpy(np.stack(actions)).long())[0].numpy()

    def imagine(self, prompts, prompt_actions, actions) -> tuple[np.ndarray, np.ndarray]:
        """(each row's prompt as the model read it, its imagined frames), row r sampled with seed + r."""
        session = self.wm.start_rows(prompts, prompt_actions, seed=self.seed, sampling=self.sampling)
        imagined = session.rollout(np.stack(actions))
        return session.row_prompt_frames, imagined


def interactions(world: ChangeWorld, store: EpisodeStore, out: Path, rng) -> dict:
    episodes = [world.episode(e) for e in store]
    # The segmenter learns the decoder's colours too: the tokenizer reads each episode from its first frame.
    readings = [world.read([f], [a])[0] for f, _, a in episodes]
    segmenter = ColourSegmenter.fit(np.concatenate([f for f, _, _ in episodes] + readings),
                                    np.concatenate([m for _, m, _ in episodes] * 2))
    sums = {row: np.zeros(2) for row in ("truth", "reading", "lam", "random")}
    all_moves, lam_shown, push = [], [], None
    for frames, masks, actions in episodes:
        if (found := largest_push(masks, PUSH_STEPS, CONTEXT - 1)) and found[1] + PUSH_STEPS < len(frames) \
                and (push is None or found[2] > push[0][2]):
            push = (found, frames, masks, actions)
        moves = [m for m in object_moves(masks) if m.t >= CONTEXT - 1]
        if not moves:
            continue
        at = [m.t for m in moves]
        sums["truth"] += motion_shown(moves, shown_steps(moves, segmenter(frames[at]), segmenter(frames[[t + 1 for t in at]])))
        # The ceiling: the tokenizer's reading of the same window, one frame further.
        read = world.read([frames[t - CONTEXT + 1 : t + 2] for t in at], [actions[t - CONTEXT + 1 : t + 1] for t in at])
        sums["reading"] += motion_shown(moves, shown_steps(moves, segmenter(read[:, -2]), segmenter(read[:, -1])))
        for row, next_actions in (("lam", actions[at]), ("random", rng.integers(0, world.num_actions, len(at)))):
            read, imagined = world.imagine([frames[t - CONTEXT + 1 : t + 1] for t in at],
                                           [actions[t - CONTEXT + 1 : t] for t in at], next_actions[:, None])
            shown = shown_steps(moves, segmenter(read[:, -1]), segmenter(imagined[:, 0]))
            sums[row] += motion_shown(moves, shown)
            if row == "lam":
                lam_shown.append(shown)
        all_moves += moves
    if not all_moves:
        return {"moves": 0}
    travelled = sums["truth"][1]
    result = {"moves": len(all_moves), "true_travel_px": round(float(travelled), 1),
              "share_shown": {row: round(float(along / travelled), 3) for row, (along, _) in sums.items()},
              "lag_fit": lag_fit(all_moves, np.concatenate(lam_shown))}
    if push is not None:
        result["push"] = push_picture(world, *push, segmenter, out, rng)
    return result


def push_picture(world: ChangeWorld, found, frames, masks, actions, segmenter, out: Path, rng) -> dict:
    """The push picture of `genie-robot eval`, for this model: the largest push imagined from the
    real frames t-2..t with the LAM's actions and with random ones."""
    mask_id, t, _ = found
    read, imagined = world.imagine([frames[t - CONTEXT + 1 : t + 1]] * 2, [actions[t - CONTEXT + 1 : t]] * 2,
                                   [actions[t : t + PUSH_STEPS], rng.integers(0, world.num_actions, PUSH_STEPS)])
    rows = {"truth": frames[t : t + PUSH_STEPS + 1],
            **{row: np.concatenate([read[i, -1:], imagined[i]]) for i, row in enumerate(("lam", "random"))}}
    return push_shown(rows, masks, mask_id, t, segmenter, out / "push.png")


def teacher_forced(world: ChangeWorld, store: EpisodeStore, rng) -> dict:
    """Accuracy of the dynamics' first guess at each frame's change tokens, all masked, given the
    tokenizer's reading of the frames before: on changed cells and on cells a moving object covers."""
    tokenizer, dynamics = world.wm.tokenizer, world.wm.dynamics
    c = dynamics.config
    cell, window = c.image_size // c.grid, c.max_frames
    hits = {(cells, row): [] for cells in ("changed", "object") for row in ("lam", "shuffled")}
    for frames, masks, actions in (world.episode(e) for e in store):
        if len(frames) < 2:
            continue
        video = torch.from_numpy(frames)[None]
        read, ids = tokenizer.read(video, torch.from_numpy(actions)[None])
        pixels = channels_first(video[0])
        changed = changed_cells(pixels[:-1], pixels[1:], cell)  # [T-1, g, g]
        moving = np.zeros((len(frames), *masks.shape[1:]), bool)  # pixels an object covers before or after its move
        for move in object_moves(masks):
            moving[move.t] |= (masks[move.t] == move.mask_id) | (masks[move.t + 1] == move.mask_id)
        object_cells = F.max_pool2d(torch.from_numpy(moving[:-1, None]).float(), cell)[:, 0] > 0
        for row, row_actions in (("lam", actions), ("shuffled", rng.permutation(actions))):
            for start in range(0, len(actions), window):
                end = min(start + window, len(actions))
                before = ids[:, start - 1 : start] if start else torch.full_like(ids[:, :1], c.none_id)
                change_in = torch.cat([before, ids[:, start : end - 1]], dim=1)
                logits = dynamics.logits(read[:, start:end], change_in, torch.full_like(ids[:, start:end], c.mask_id),
                                         torch.from_numpy(row_actions[start:end])[None])
                hit = (logits[0].argmax(-1) == ids[0, start:end]).numpy()
                hits["changed", row].append(hit[changed[start:end].numpy()])
                hits["object", row].append(hit[object_cells[start:end].numpy()])
    result = {}
    for (cells, row), found in hits.items():
        found = np.concatenate(found) if found else np.zeros(0)
        result.setdefault(f"{cells}_cells", {"count": int(found.size)})[row] = round(float(found.mean()), 3) if found.size else None
    return result


def rollouts(world: ChangeWorld, store: EpisodeStore, rng) -> dict:
    horizon = HORIZONS[-1]
    episodes = [world.episode(e) for e in store]
    episodes = [(f[: horizon + 1], m[: horizon + 1], a[:horizon]) for f, m, a in episodes if len(f) > horizon]
    if not episodes:
        return {"episodes": 0}
    truth = np.stack([f for f, _, _ in episodes])
    rows = {"lam": np.stack([a for _, _, a in episodes]), "random": rng.integers(0, world.num_actions, (len(episodes), horizon))}
    videos, seconds = {}, {}
    for row, actions in rows.items():
        started = time.perf_counter()
        _, imagined = world.imagine(truth[:, :1], np.zeros((len(episodes), 0), np.int64), actions)
        seconds[row] = time.perf_counter() - started
        videos[row] = np.concatenate([truth[:, :1], imagined], axis=1)
    videos["copy_first"] = np.repeat(truth[:, :1], horizon + 1, axis=1)
    errors = {row: mse(truth, video) for row, video in videos.items()}  # [E, T]
    pooled = {row: psnr_of_mse(err.mean(0)) for row, err in errors.items()}
    per_episode = {row: psnr_of_mse(err) for row, err in errors.items()}
    segmenter = ColourSegmenter.fit(truth.reshape(-1, *truth.shape[2:]), np.concatenate([m for _, m, _ in episodes]))
    arm_iou = {row: float(np.nanmean([mask_iou(segmenter(video[i, 8]), masks[8], ARM_ID)
                                      for i, (_, masks, _) in enumerate(episodes)])) for row, video in videos.items()}
    return {"episodes": len(episodes),
            "minus_copy_db": {str(h): round(float(pooled["lam"][h] - pooled["copy_first"][h]), 2) for h in HORIZONS},
            "delta_4_db": round(float((per_episode["lam"][:, 4] - per_episode["random"][:, 4]).mean()), 2),
            "arm_iou_8": {row: round(value, 3) for row, value in arm_iou.items()},
            # All episodes' rows step together: a batched step, per frame of one row.
            "ms_per_frame": round(1000 * seconds["lam"] / (len(episodes) * horizon), 1),
            "video_world_model_ms_per_frame": video_world_model_ms(world, truth[0, 0], rows["lam"]),
            "threads": torch.get_num_threads()}


def video_world_model_ms(world: ChangeWorld, prompt_HWC: np.ndarray, actions_RN: np.ndarray) -> float | None:
    """The same rollouts' time per frame with the run's video world model (tokenizer + dynamics),
    at `genie-robot eval`'s sampling, where the run has one: the two timed on the same machine."""
    run = Run.load(world.run_dir, stages=("tokenizer", "dynamics"))
    if not (run.has("tokenizer") and run.has("dynamics")):
        return None
    wm = run.world_model()
    if wm.image_size != world.size:
        return None
    started = time.perf_counter()
    wm.imagine(prompt_HWC[None], actions_RN, sampling=SamplingConfig(steps=8))
    return round(1000 * (time.perf_counter() - started) / actions_RN.size, 1)


def held_out_store(path: Path, episodes: int, seed: int, policy: str) -> Path:
    from genie_robot.sim.generate import generate_dataset

    if path.exists():
        with EpisodeStore(path) as store:
            if len(store) >= episodes:
                return path
    generate_dataset(path, episodes=episodes, steps=32, size=64, seed=seed, policy=policy, split="test", workers=2)
    return path


def quick(out: Path) -> list[str]:
    """A tiny store and tiny models (an untrained LAM, a few steps of each change stage)."""
    from genie_robot.cli import main as cli
    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import save_model
    from genie_robot.sim.generate import generate_dataset

    store, run = out / "pushes.h5", out / "run"
    generate_dataset(store, episodes=2, steps=20, size=16, policy="push", progress=False)
    config_cls, model_cls = MODELS["lam"]
    torch.manual_seed(0)
    save_model(model_cls(config_cls.preset("tiny")), run / "lam")
    for stage in ("change_tokenizer", "change_dynamics"):
        cli(["train", stage, "--data", str(store), "--preset", "tiny", "--steps", "3", "--sample-every", "0", "--out", str(run)])
    return ["--run", str(run), "--data", str(store), "--out", str(out / "report")]


def report(name: str, figures: dict) -> None:
    """The store's figures as three lines."""
    pushes, rolled, forced = figures["interactions"], figures["rollouts"], figures["teacher_forced"]
    if pushes["moves"]:
        lag = pushes["lag_fit"]
        print(f"{name}: {pushes['moves']} object moves; motion shown one step ahead: "
              + ", ".join(f"{row} {value:.2f}" for row, value in pushes["share_shown"].items())
              + (f"; lag fit {lag['step']:+.2f} x step, {lag['previous_step']:+.2f} x previous step" if lag else ""))
    if "push" in pushes:
        push = pushes["push"]
        print(f"{name}: largest push ({push['object']}, {push['true_travel_px']} px over {PUSH_STEPS} steps): "
              + ", ".join(f"{row} {value:.2f}" for row, value in push["shown"].items()) + f" -> {push['picture']}")
    print(f"{name}: teacher-forced token accuracy, LAM (shuffled actions): "
          + "; ".join(f"{cells.replace('_', ' ')} ({f['count']}) {f['lam']} ({f['shuffled']})" for cells, f in forced.items()))
    if rolled["episodes"]:
        video = rolled["video_world_model_ms_per_frame"]
        print(f"{name}: {rolled['episodes']} rollouts; imagined minus copy at t = {' / '.join(map(str, HORIZONS))}: "
              + " / ".join(f"{v:+.2f}" for v in rolled["minus_copy_db"].values())
              + f" dB; Delta_4 {rolled['delta_4_db']:.2f} dB; arm IoU t = 8: "
              + ", ".join(f"{row} {value:.2f}" for row, value in rolled["arm_iou_8"].items())
              + f"; {rolled['ms_per_frame']} ms per imagined frame ({rolled['episodes']} rows a step, {rolled['threads']} "
              + "threads)" + (f"; the run's video world model: {video} ms" if video else ""))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="out/demo/run", help="a run with lam/, change_tokenizer/, change_dynamics/")
    parser.add_argument("--data", nargs="+", help="MuJoCo stores of held-out episodes (default: the protocol's, made in OUT/data)")
    parser.add_argument("--out", default="out/change_tokens")
    parser.add_argument("--maskgit-steps", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--order", default="confidence", choices=ORDERS)
    parser.add_argument("--draw", default="auto", choices=DRAWS, help="auto: the median levels of the FSQ tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            return main(quick(Path(tmp)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stores = args.data or [held_out_store(out / "data" / f"heldout_{policy}.h5", episodes, seed, policy)
                           for seed, policy, episodes in ((102, "push", 12), (101, "mixed", 8))]
    torch.set_grad_enabled(False)
    world = ChangeWorld(args.run, SamplingConfig(args.maskgit_steps, args.temperature, order=args.order, draw=args.draw), args.seed)
    result = {"run": str(args.run), "sampling": vars(world.sampling), "stores": {}}
    for path in map(Path, stores):
        rng = np.random.default_rng(args.seed)
        (out / path.stem).mkdir(exist_ok=True)
        with EpisodeStore(path) as store:
            figures = {"interactions": interactions(world, store, out / path.stem, rng),
                       "rollouts": rollouts(world, store, rng),
                       "teacher_forced": teacher_forced(world, store, np.random.default_rng(args.seed))}
        result["stores"][str(path)] = figures
        report(path.stem, figures)
    with atomic_path(out / "change_tokens.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
