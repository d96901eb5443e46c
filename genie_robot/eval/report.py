"""`genie-robot eval`: every metric of a run on held-out episodes, with baselines, as one report.

From each held-out episode's first frame the world model imagines `max(horizons)` frames three
ways in one batched session (rows share the prompt): with the latent actions the LAM infers
from the true video, with the episode's arm commands turned into latent actions by the adapter,
and with uniformly random latent actions. Baselines beside them: the tokenizer's reconstruction
(the ceiling of any generation) and copying the first frame (a model that predicts no change).

Delta_t PSNR = PSNR(x_t, LAM row) - PSNR(x_t, random row) at t; the rows are sequential
generations from one seed, so the frame at t is exactly what `metrics.delta_psnr` generates.
A metric whose inputs are missing (no LAM, no actions, no masks, too few episodes) is skipped
and the reason written in the report instead; nothing halfway crashes the report."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.store import EpisodeStore
from genie_robot.errors import CheckpointError, InputError
from genie_robot.eval import actions as action_eval
from genie_robot.eval.fvd import MIN_FRAMES, frechet_distance, gaussian_stats, i3d_features, load_i3d
from genie_robot.eval.metrics import psnr, ssim, token_stability
from genie_robot.eval.physics import ColourSegmenter, compare_rollout, nanmean
from genie_robot.io import atomic_path
from genie_robot.models.adapter import ActionAdapter
from genie_robot.models.world_model import WorldModel
from genie_robot.sampling import SamplingConfig

ROWS = ("lam", "adapter", "random")  # imagined rollouts, one session row each


@dataclass
class EvalConfig:
    horizons: tuple = (1, 4, 8, 16)
    delta_t: int = 4
    max_episodes: int = 16
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(steps=8))
    seed: int = 0
    fvd: bool = True
    gifs: int = 3
    refit_adapter: bool = False

    def __post_init__(self):
        self.horizons = tuple(sorted(set(int(h) for h in self.horizons)))
        if not self.horizons or self.horizons[0] < 1:
            raise InputError(f"horizons must be >= 1 frames, got {self.horizons}")
        if self.delta_t < 1:
            raise InputError(f"Delta_t PSNR needs t >= 1, got {self.delta_t}")
        if self.max_episodes < 1:
            raise InputError(f"--episodes must be >= 1, got {self.max_episodes}")


def _check_resolution(store: EpisodeStore, path, image_size: int) -> None:
    shapes = store.frame_shapes()
    if shapes != {(image_size, image_size, 3)}:
        raise InputError(f"{path} holds frames of {sorted(shapes)} but the model works at "
                         f"{image_size}x{image_size}; convert the episodes at --size {image_size}")


def _adapter(wm, run_dir: Path, adapter_data, eval_transitions, config: EvalConfig, notes: dict):
    """The run's adapter (fit and saved when missing or --refit-adapter) and its accuracy on
    the evaluation transitions, or (None, None) with the reason in `notes`."""
    from genie_robot.train.checkpoint import save_model

    existing = (run_dir / "adapter" / "model.safetensors").exists()
    if existing and not config.refit_adapter:
        adapter = ActionAdapter.load(run_dir)
        if adapter.config.num_actions != wm.num_actions or adapter.config.command_names != eval_transitions.command_names:
            raise CheckpointError(f"{run_dir}/adapter was fit for another model or command set; rerun with --refit-adapter")
        return adapter, action_eval.adapter_accuracy(adapter, eval_transitions)
    if adapter_data is not None:
        with EpisodeStore(adapter_data) as store:
            _check_resolution(store, adapter_data, wm.image_size)
            fit = action_eval.collect_transitions(wm, [e for e in store if e.action_names is not None])
        held_out = eval_transitions
        notes["adapter"] = f"fit on {adapter_data}, scored on the evaluation episodes"
    else:
        fit, held_out = action_eval.split_by_episode(eval_transitions)
        notes["adapter"] = "fit on the first half of the evaluation episodes, scored on the second half"
    adapter, accuracy = action_eval.fit_and_score_adapter(fit, held_out, wm.num_actions, config.seed)
    save_model(adapter, run_dir / "adapter")
    notes["adapter"] += f"; saved to {run_dir / 'adapter'}"
    return adapter, accuracy


def evaluate(wm: WorldModel, run_dir, data, out, config: EvalConfig = EvalConfig(), adapter_data=None,
             progress: bool = True) -> dict:
    """Compute every metric, write REPORT_DIR/{metrics.json, *.png, *.gif, index.html}; returns the metrics."""
    from genie_robot.eval.figures import write_report

    started = time.time()
    run_dir, out = Path(run_dir), Path(out)
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    store = EpisodeStore(data)
    _check_resolution(store, data, wm.image_size)
    need = config.horizons[-1] + 1
    episodes = [e for e in store][: config.max_episodes]
    long_enough = [e for e in episodes if e.num_frames >= need]
    if not long_enough:
        longest = max(e.num_frames for e in episodes)
        raise InputError(f"every episode of {data} is shorter than the longest horizon + 1 = {need} frames "
                         f"(longest: {longest}); pass --horizons up to {longest - 1}")
    if len(long_enough) < len(episodes):
        notes["episodes"] = f"{len(episodes) - len(long_enough)} episodes shorter than {need} frames left out"
    episodes = long_enough
    has_actions = all(e.action_names is not None for e in episodes)
    has_masks = all(e.has_masks for e in episodes)
    if wm.lam is None:
        skipped["latent actions"] = "the run has no LAM (train one with `genie-robot train lam`)"
    elif not has_actions:
        skipped["latent actions"] = f"{data} has no recorded arm commands (actions)"

    transitions = adapter = None
    metrics: dict = {"run": str(run_dir), "data": str(data), "episodes": len(episodes),
                     "config": {**asdict(config), "sampling": asdict(config.sampling)}}
    if "latent actions" in skipped:
        skipped["adapter"] = "needs latent actions: " + skipped["latent actions"]
    else:
        transitions = action_eval.collect_transitions(wm, episodes)
        table = action_eval.confusion(transitions.latents, transitions.behaviours, wm.num_actions)
        metrics["latent_actions"] = {
            "per_code": action_eval.per_code_effects(transitions, wm.num_actions),
            "confusion": table.tolist(),
            "nmi": action_eval.normalized_mutual_information(table),
            "codes_used": int((table.sum(1) > 0).sum()),
        }
        try:
            adapter, metrics["adapter"] = _adapter(wm, run_dir, adapter_data, transitions, config, notes)
        except InputError as exc:
            skipped["adapter"] = str(exc)
    if not has_masks:
        skipped["physics"] = f"{data} has no object masks (MuJoCo episodes have them)"
    elif wm.lam is None and adapter is None:
        skipped["physics"] = "needs the LAM or an adapter to turn the episode into latent actions"

    horizon = config.horizons[-1]
    rng = np.random.default_rng(config.seed)
    curves = {name: {"psnr": [], "ssim": []} for name in (*ROWS, "reconstruction", "copy_first")}
    videos = {name: [] for name in ("truth", *ROWS, "reconstruction", "copy_first")}
    # Baselines beside the imagined rows: what the tokenizer keeps, and "nothing moves".
    stability = []  # per episode: token changes vs pixel changes (tokenizer flicker)
    physics_runs = {name: [] for name in ("lam", "adapter", "reconstruction", "copy_first") if name in videos}
    for position, episode in enumerate(tqdm(episodes, desc="eval episodes", unit="ep", disable=not progress)):
        truth = episode.read_frames(0, need)
        rows = {"random": rng.integers(0, wm.num_actions, horizon)}
        if transitions is not None:  # the LAM already read this episode (it is causal: same prefix)
            own = transitions.episode == position
            rows["lam"] = transitions.latents[own][:horizon]
            if adapter is not None:
                rows["adapter"] = adapter.to_latent(transitions.commands[own][:horizon])
        elif wm.lam is not None:
            rows["lam"] = wm.infer_actions(truth)
        names = [n for n in ROWS if n in rows]
        session = wm.start(truth[:1], seed=config.seed, batch=len(names), sampling=config.sampling)
        generated = session.rollout(np.stack([rows[n] for n in names]))
        imagined = {n: np.concatenate([truth[:1], generated[i]]) for i, n in enumerate(names)}
        tokens = wm.tokenize(truth)
        stability.append(token_stability(tokens.cpu().numpy(), truth, wm.tokenizer.config.patch))
        imagined["reconstruction"] = wm.detokenize(tokens)
        imagined["copy_first"] = np.repeat(truth[:1], need, axis=0)
        for name, frames in imagined.items():
            curves[name]["psnr"].append(psnr(truth, frames))
            curves[name]["ssim"].append(ssim(truth, frames))
            videos[name].append(frames)
        videos["truth"].append(truth)

    if "physics" not in skipped:
        masks = [e.masks[:need] for e in episodes]
        # Fit on true frames and on their reconstructions: generated frames come from the same
        # decoder, so its colour shifts must not read as missing objects.
        segmenter = ColourSegmenter.fit(np.concatenate(videos["truth"] + videos["reconstruction"]),
                                        np.concatenate(masks + masks))
        notes["segmentation"] = ("colour lookup classifier fit on the evaluation episodes' MuJoCo masks, "
                                 "paired with the true frames and their tokenizer reconstructions")
        for i, episode in enumerate(episodes):
            keys = episode.state_keys
            deformation = episode.read_state("soft_deformation")[:need] if "soft_deformation" in keys else None
            for name in physics_runs:
                if videos[name]:
                    physics_runs[name].append(compare_rollout(videos[name][i], videos["truth"][i], masks[i], segmenter, deformation))

    metrics["fidelity"] = {
        name: {kind: {str(h): float(np.mean([c[h] for c in values])) for h in config.horizons}
               for kind, values in curve.items()}
        for name, curve in curves.items() if curve["psnr"]
    }
    metrics["token_stability"] = {key: float(np.mean([row[key] for row in stability])) for key in stability[0]}
    metrics["fidelity_curves"] = {name: np.mean(curve["psnr"], axis=0).tolist()
                                  for name, curve in curves.items() if curve["psnr"]}
    if "lam" in metrics["fidelity"] and config.delta_t <= horizon:
        t = config.delta_t
        lam_t = np.array([c[t] for c in curves["lam"]["psnr"]])
        random_t = np.array([c[t] for c in curves["random"]["psnr"]])
        metrics["delta_psnr"] = {"t": t, "delta_psnr": float((lam_t - random_t).mean()),
                                 "psnr_lam": float(lam_t.mean()), "psnr_random": float(random_t.mean()),
                                 "copy_first_psnr": float(np.mean([c[t] for c in curves["copy_first"]["psnr"]]))}
    else:
        skipped["delta_psnr"] = "needs the LAM" if "lam" not in metrics["fidelity"] else f"t={config.delta_t} beyond the horizon"

    clip = min(16, need)
    if not config.fvd:
        skipped["fvd"] = "turned off (--no-fvd)"
    elif len(episodes) < 2 or clip < MIN_FRAMES:
        skipped["fvd"] = f"needs >= 2 episodes of >= {MIN_FRAMES} frames (have {len(episodes)} of {clip})"
    else:
        i3d = load_i3d(device=str(wm.device))
        clips = lambda name: np.stack([v[:clip] for v in videos[name]])
        real = gaussian_stats(i3d_features(i3d, clips("truth")))
        metrics["fvd"] = {"videos": len(episodes), "frames": clip, **{
            name: frechet_distance(*real, *gaussian_stats(i3d_features(i3d, clips(name))))
            for name in (*ROWS, "reconstruction", "copy_first") if videos[name]}}
        notes["fvd"] = (f"{len(episodes)} videos of {clip} frames: FVD from so few videos is biased upward; "
                        "compare the rows with each other, not with published figures")

    if "physics" not in skipped:
        metrics["physics"] = {name: _physics_summary(runs) for name, runs in physics_runs.items() if runs}
    metrics["skipped"] = skipped
    metrics["notes"] = notes
    metrics["seconds"] = round(time.time() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, metrics, videos, config)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    store.close()
    return metrics


def _physics_summary(runs: list[dict]) -> dict:
    """Per-step means over episodes of every per-step physics figure (NaN-safe)."""
    def mean_of(get):
        return [None if np.isnan(v) else round(float(v), 4) for v in nanmean([get(r) for r in runs])]

    summary = {"psnr": mean_of(lambda r: r["psnr"])}
    for key in ("iou", "segmenter_iou", "centroid_error_px", "soft_area_change", "soft_shape_change"):
        summary[key] = {name: mean_of(lambda r, n=name: r[key][n]) for name in runs[0][key]}
    if "sim_deformation_mm" in runs[0]:
        summary["sim_deformation_mm"] = mean_of(lambda r: r["sim_deformation_mm"])
    return summary
