"""World-model quality vs training budget: the small recipe trained at several budgets, each
evaluated by `genie-robot eval` on the same held-out MuJoCo episodes, one table.

Data (made once, reused): the demo's training stores (mixed-policy episodes, seed 0, and
random-exploration episodes, seed 2) and 8 held-out mixed-policy episodes of another seed
(seed 1, split test): the protocol of `make demo`. A budget multiplies the recipe's steps for
every stage (genie_robot/train/recipe.py); budget 1 is the demo. Nothing is tuned on the
held-out episodes: they are only read by `eval`.

Printed per budget: training minutes and steps per stage, then every figure of the quality
issue beside its baseline: tokenizer PSNR and object-mask IoU of reconstructions, imagined
PSNR with the LAM's actions minus the copy-first-frame baseline at t = 4, 8, 16, Delta_4 PSNR,
NMI of latent codes vs arm behaviours, the share of the hand's motion the codes explain, adapter
accuracy vs the majority code, arm-mask IoU of imagined frames at t = 8 vs the copy baseline.
With --planning N, the planning benchmark on N push tasks and N reach tasks from 2N episodes of the held-out seed
(its first 8 are the episodes `eval` reads), each task planned with its preset.
With --order confidence, eval fixes the most confident tokens first instead of random ones (reports
in x<budget>/report*_confidence; the row says so): a model that commits to its motions (x3) gains by it,
one that hedges (x1) copies more (docs/experiments/longer_recipe.md).
With --draw median, each MaskGIT step fixes per FSQ dimension the median level of the predicted
distribution instead of a sample (reports in x<budget>/report*_median; docs/experiments/median_draw.md).
With --heldout N, eval reads the first N episodes of the held-out seed instead of 8 (the first 8 are the
protocol's): a steadier mean; each imagined row is also scored by the PSNR of the episodes' mean
squared error, which an episode that copying gets exactly right (nothing moved) cannot dominate.

Usage: python benchmarks/quality.py [--budgets 1 3] [--out out/quality] [--heldout 32] [--order confidence] [--draw median] [--planning 12]
       python benchmarks/quality.py --preset base --budgets 8 --minutes 2 --device cuda --no-fvd
                                                 (a GPU: as many steps as 2 minutes a stage hold)
       python benchmarks/quality.py --quick      (tiny preset, seconds: keeps the script alive in CI)
The table is also written to OUT/quality.md and OUT/quality.json."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from genie_robot.cli import RATE
from genie_robot.data.store import EpisodeStore
from genie_robot.io import atomic_path
from genie_robot.sampling import DRAWS, ORDERS, SamplingConfig
from genie_robot.train.recipe import recipe

STAGES = ("tokenizer", "lam", "dynamics")


def cli(*args: str) -> None:
    command = [sys.executable, "-m", "genie_robot.cli", *args]
    print("$ genie-robot " + " ".join(args), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})


def mujoco_store(path: Path, episodes: int, quick: bool, *options: str) -> Path:
    """`genie-robot data mujoco` at the demo's episode length and size (tiny ones when quick);
    a store that already holds the episodes is kept as it is (read without MuJoCo, so stores
    made elsewhere train and evaluate on a machine without it)."""
    if path.exists():
        with EpisodeStore(path) as store:
            if len(store) >= episodes:
                return path
    cli("data", "mujoco", "--episodes", str(episodes), *options, "--steps", "18" if quick else "32",
        "--size", "16" if quick else "64", "--workers", "2", "--out", str(path))
    return path


HELD_OUT = ("--seed", "1", "--split", "test")


PROTOCOL_EPISODES = 8


def heldout_name(episodes: int) -> str:
    return "heldout" if episodes == PROTOCOL_EPISODES else f"heldout{episodes}"


def make_data(out: Path, quick: bool, heldout: int) -> dict:
    """The demo's stores (same commands as the Makefile) and `heldout` episodes of the held-out seed, made once."""
    return {"train": mujoco_store(out / "mujoco.h5", 4 if quick else 160, quick, "--seed", "0"),
            "explore": mujoco_store(out / "explore.h5", 2 if quick else 64, quick, "--seed", "2", "--policy", "random"),
            "heldout": mujoco_store(out / f"{heldout_name(heldout)}.h5", 2 if quick else heldout, quick, *HELD_OUT)}


def train(run: Path, data: dict, preset: str, scale: float, quick: bool, minutes: float | None = None, device: str = "auto") -> dict:
    """The three model stages at `scale` x the recipe's steps, or as many of them as `minutes` per stage
    hold (then the adapter at its recipe); returns minutes and steps per model stage."""
    mixture = [f"{data['train']}:2", f"{data['explore']}:1"]
    # Minutes per stage are kept beside the run, so a rerun that finds a stage trained reports its real cost.
    spent_file = run.parent / "train.json"
    spent = json.loads(spent_file.read_text()) if spent_file.exists() else {}
    for stage in STAGES:
        steps = 2 if quick else max(1, round(recipe(preset, stage)["steps"] * scale))
        if (run / stage / "model.safetensors").exists():
            trained = json.loads((run / stage / "trainer_state.json").read_text())["step"]
            if trained != steps and not (minutes and trained < steps):
                # A run of an older recipe: reusing it would report that recipe under this one's name.
                raise SystemExit(f"{run / stage} was trained for {trained} steps, but the recipe at budget x{scale:g} "
                                 f"asks for {steps}: move {run.parent} aside (or pass another --out) to train it anew")
            # Reused: its minutes come from train.json, unknown for a stage trained before they were kept.
            spent.setdefault(stage, {"minutes": None, "steps": trained})
            continue
        started = time.time()
        extra = (["--batch-size", "2", "--clip-len", "4"] if quick else []) + (["--minutes", str(minutes)] if minutes else [])
        cli("train", stage, "--data", *mixture, "--preset", preset, "--steps", str(steps), *extra, "--device", device,
            # With a budget the step count is set in training, so checkpoints come every 500 steps instead of every quarter.
            "--sample-every", "0", "--ckpt-every", str(max(1, steps // 4) if not minutes else 500), "--out", str(run))
        trained = json.loads((run / stage / "trainer_state.json").read_text())["step"]  # below `steps` when timed out
        spent[stage] = {"minutes": round((time.time() - started) / 60, 1), "steps": trained}
        write_text(spent_file, json.dumps(spent, indent=2))
    # The adapter, as `make demo` trains it: on the episodes with the mixed policy's commands.
    if not (run / "adapter" / "model.safetensors").exists():
        cli("train", "adapter", "--data", str(data["train"]), "--preset", preset, *(["--steps", "2"] if quick else []),
            "--device", device, "--sample-every", "0", "--out", str(run))
    return spent


def report_is_current(run: Path, report: Path) -> bool:
    """Eval is deterministic: a report written after every model of the run was saved stands,
    unless an older `eval` wrote it (it lacks a figure this table reads)."""
    metrics = report / "metrics.json"
    models = list(run.glob("*/model.safetensors"))
    if not metrics.exists() or any(metrics.stat().st_mtime < m.stat().st_mtime for m in models):
        return False
    found = json.loads(metrics.read_text())
    return "interaction" in found or "interaction" in found["skipped"]  # the newest figure it reads


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def figures(metrics: dict) -> dict:
    """The issue's figures from `eval`'s metrics.json."""
    fid, phys = metrics["fidelity"], metrics.get("physics", {})
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    horizons = [h for h in ("4", "8", "16") if h in fid["lam"]["psnr"]]
    row = {
        "tokenizer_psnr": mean([fid["reconstruction"]["psnr"][h] for h in fid["reconstruction"]["psnr"]]),
        "lam_minus_copy": {h: fid["lam"]["psnr"][h] - fid["copy_first"]["psnr"][h] for h in horizons},
        "lam_minus_copy_pooled": {h: fid["lam"]["psnr_pooled"][h] - fid["copy_first"]["psnr_pooled"][h] for h in horizons},
        "lam_psnr": {h: fid["lam"]["psnr"][h] for h in horizons},
        "copy_psnr": {h: fid["copy_first"]["psnr"][h] for h in horizons},
        "delta_psnr": metrics.get("delta_psnr", {}).get("delta_psnr"),
        "nmi": metrics.get("latent_actions", {}).get("nmi"),
        "motion_explained": metrics.get("latent_actions", {}).get("displacement_explained"),
        "flicker": metrics["token_stability"]["flicker"],
    }
    if "interaction" in metrics:
        shown = metrics["interaction"]["share_shown"]
        row["objects_shown"] = (shown["lam"], shown["random"], shown["reconstruction"])
    if "adapter" in metrics:
        a = metrics["adapter"]
        row["adapter"] = (a["command_to_latent"], a["command_to_latent_majority"])
    if "reconstruction" in phys:
        iou = phys["reconstruction"]["iou"]
        row["recon_iou"] = {name: mean([v for v in values if v is not None]) for name, values in iou.items()}
        at = lambda name: phys[name]["iou"]["arm"][8] if len(phys[name]["iou"]["arm"]) > 8 else None  # noqa: E731
        row["arm_iou_t8"] = (at("lam"), at("copy_first"))
        row["motion_followed"] = {name: v["share"] for name, v in phys["lam"]["motion_followed"].items()}
    return row


def planning_store(out: Path, tasks: int, quick: bool) -> Path:
    """Held-out episodes for the planning tasks: the held-out seed's first 8 episodes (those `eval`
    reads) and more of the same seed, 2 per task, since not every episode holds a push."""
    return mujoco_store(out / "planning.h5", 2 if quick else max(8, 2 * tasks), quick, *HELD_OUT)


def planning(run: Path, store: Path, tasks: int) -> list[str]:
    """The planning benchmark's summary tables, push tasks then reach tasks (a header, a row per method),
    each task planned with its preset (genie_robot/plan/presets.py)."""
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "planning.py"), "--run", str(run),
                           "--data", str(store), "--tasks", str(tasks), "--task", "push", "reach"],
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.split()[:2] == ["method", "success"]]
    return [line for i in headers for line in lines[i: i + 6]]


SAMPLING_OPTIONS = ("order", "draw")  # eval's sampling settings a row may change


def changed_sampling(sampling: dict) -> dict:
    """The settings of `sampling` that differ from SamplingConfig's defaults."""
    return {name: value for name, value in sampling.items() if value != getattr(SamplingConfig, name)}


def table(rows: list[dict]) -> str:
    fmt = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["| budget | minutes (tok / lam / dyn) | steps | tokenizer PSNR dB | token flicker | mask IoU recon (arm / cube / cyl / soft) "
             "| LAM - copy dB, t=4 / 8 / 16 | same, PSNR of the mean MSE "
             "| LAM PSNR (copy) t=4 | Delta_4 PSNR dB | NMI | hand motion explained by code (x / y / z) "
             "| adapter acc (majority) "
             "| arm IoU t=8 (copy) | motion followed, LAM actions (arm / cube / cyl / soft) "
             "| object motion shown one step ahead, LAM (random; reconstruction) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, f = r["train"], r["figures"]
        iou = f.get("recon_iou", {})
        lines.append(" | ".join([
            f"| x{r['scale']:g}" + (f", {r['minutes']:g} min a stage" if r.get("minutes") else "")
            + (f", {r['preset']}" if r.get("preset", "small") != "small" else "")
            + "".join(f", {value} {name}" for name, value in changed_sampling(r["sampling"]).items()),
            " / ".join(fmt(t[s]["minutes"], 1) for s in STAGES),
            " / ".join(str(t[s]["steps"]) for s in STAGES),
            fmt(f["tokenizer_psnr"], 1),
            fmt(f["flicker"]),
            " / ".join(fmt(iou.get(k)) for k in ("arm", "red_cube", "blue_cylinder", "soft_cube")),
            " / ".join(f"{v:+.1f}" for v in f["lam_minus_copy"].values()),
            " / ".join(f"{v:+.1f}" for v in f["lam_minus_copy_pooled"].values()),
            f"{fmt(f['lam_psnr'].get('4'), 1)} ({fmt(f['copy_psnr'].get('4'), 1)})",
            fmt(f["delta_psnr"]),
            fmt(f["nmi"]),
            " / ".join(fmt(v) for v in f["motion_explained"]) if f.get("motion_explained") else "-",
            f"{fmt(f['adapter'][0])} ({fmt(f['adapter'][1])})" if "adapter" in f else "-",
            f"{fmt(f['arm_iou_t8'][0])} ({fmt(f['arm_iou_t8'][1])})" if "arm_iou_t8" in f else "-",
            " / ".join(fmt(f["motion_followed"].get(k)) for k in ("arm", "red_cube", "blue_cylinder", "soft_cube"))
            if "motion_followed" in f else "-",
            "{:.2f} ({:.2f}; {:.2f})".format(*f["objects_shown"]) if "objects_shown" in f else "-",
        ]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[1.0, 3.0], help="multiples of the recipe's steps")
    parser.add_argument("--out", default="out/quality")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--planning", type=int, default=0, help="also run the planning benchmark on N tasks")
    parser.add_argument("--heldout", type=int, default=PROTOCOL_EPISODES,
                        help=f"held-out episodes eval reads (the protocol: {PROTOCOL_EPISODES}; more for a steadier mean)")
    parser.add_argument("--order", default=SamplingConfig.order, choices=ORDERS, help="MaskGIT unmasking order of eval")
    parser.add_argument("--draw", default=SamplingConfig.draw, choices=DRAWS, help="what eval's MaskGIT steps fix: a sample or the median")
    parser.add_argument("--minutes", type=RATE, help="time budget per model stage: train as many of the budget's steps as fit")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where training and eval run")
    parser.add_argument("--no-fvd", action="store_true", help="eval without FVD (no I3D weights there; not in the table)")
    parser.add_argument("--quick", action="store_true", help="tiny preset and data, 2 steps a stage (CI)")
    args = parser.parse_args()
    if args.planning < 0:
        parser.error(f"--planning takes a number of tasks >= 0 (0: no planning), got {args.planning}")
    if args.heldout < 1:
        parser.error(f"--heldout takes a number of episodes >= 1, got {args.heldout}")
    out = Path(args.out if not args.quick else args.out + "-quick")
    if args.quick:
        shutil.rmtree(out, ignore_errors=True)  # a smoke test starts clean; full runs resume what they have
    preset, budgets = ("tiny", [1.0]) if args.quick else (args.preset, args.budgets)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out / "data", args.quick, args.heldout)
    rows = []
    for scale in budgets:
        run = out / f"x{scale:g}" / "run"
        report = out / f"x{scale:g}" / ("report" if args.heldout == PROTOCOL_EPISODES else f"report_{heldout_name(args.heldout)}")
        sampling = {name: getattr(args, name) for name in SAMPLING_OPTIONS}
        for value in changed_sampling(sampling).values():
            report = report.with_name(f"{report.name}_{value}")
        spent = train(run, data, preset, scale, args.quick, args.minutes, args.device)
        eval_args = (["--episodes", "2", "--horizons", "1", "4", "8", "16", "--no-fvd"] if args.quick
                     else ["--episodes", str(args.heldout)] + (["--no-fvd"] if args.no_fvd else []))
        eval_args += ["--order", args.order, "--draw", args.draw, "--device", args.device]
        if not report_is_current(run, report):
            cli("eval", "--run", str(run), "--data", str(data["heldout"]), "--out", str(report), *eval_args)
        row = {"scale": scale, "preset": preset, "minutes": args.minutes, "sampling": sampling, "train": spent,
               "figures": figures(json.loads((report / "metrics.json").read_text()))}
        if args.planning:
            row["planning"] = planning(run, planning_store(out / "data", args.planning, args.quick), args.planning)
        rows.append(row)
    text = table(rows)
    print(text)
    for row in rows:
        if "planning" in row:
            print(f"planning, budget x{row['scale']:g}:\n" + "\n".join(row["planning"]))
    write_text(out / "quality.md", text + "\n")
    write_text(out / "quality.json", json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
