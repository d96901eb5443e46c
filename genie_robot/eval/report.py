"""`genie-robot eval`: every metric of a run on held-out episodes, with baselines, as one report.

From each held-out episode's first frame the world model imagines `max(horizons)` frames three
ways in one batched session (rows share the prompt): with the latent actions the LAM infers
from the true video, with the episode's arm commands turned into latent actions by the run's adapter
(`genie-robot train adapter`),
and with uniformly random latent actions. Baselines beside them: the tokenizer's reconstruction
(the ceiling of any generation) and copying the first frame (a model that predicts no change).

Delta_t PSNR = PSNR(x_t, LAM row) - PSNR(x_t, random row) at t; the rows are sequential
generations from one seed, so the frame at t is exactly what `metrics.delta_psnr` generates.
A metric whose inputs are missing (no LAM, no adapter, no actions, no masks, too few episodes)
is skipped and the reason written in the report instead; nothing halfway crashes the report.
The run is only read: the report goes to its own folder. Episodes stored at a higher resolution
than the model's are resized as training resizes them (the report's notes say so).

Several held-out stores are several domains (e.g. the arm, CoinRun, Pitfall!): each is
evaluated on its own as above into OUT/<store name>/, and OUT/index.html sets them side by side,
with how often each domain uses each latent code and what each code stands for in each."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.store import Episode, EpisodeStore
from genie_robot.data.transforms import resize_masks, resize_video
from genie_robot.errors import InputError
from genie_robot.eval import actions as action_eval
from genie_robot.eval.figures import LABELS, plot_push, write_domains_report, write_report
from genie_robot.eval.fvd import MIN_FRAMES, frechet_distance, gaussian_stats, i3d_features, load_i3d
from genie_robot.eval.metrics import mse, psnr_of_mse, ssim, token_stability
from genie_robot.eval.physics import (
    MOVABLE,
    ColourSegmenter,
    Move,
    centroids,
    compare_rollout,
    lag_fit,
    largest_push,
    motion_shown,
    nanmean,
    object_moves,
    shown_steps,
)
from genie_robot.io import atomic_path
from genie_robot.models.run import Run
from genie_robot.models.world_model import Simulator
from genie_robot.sampling import SamplingConfig

ROWS = ("lam", "adapter", "random")  # imagined rollouts, one session row each
BASELINES = ("reconstruction", "copy_first")


@dataclass
class EvalConfig:
    horizons: tuple = (1, 4, 8, 16)
    delta_t: int = 4
    max_episodes: int = 16
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(steps=8))
    seed: int = 0
    fvd: bool = True
    gifs: int = 3
    world_model: str = "video"  # which of the run's simulators (Run.world_model)

    def __post_init__(self):
        self.horizons = tuple(sorted(set(int(h) for h in self.horizons)))
        if not self.horizons or self.horizons[0] < 1:
            raise InputError(f"horizons must be >= 1 frames, got {self.horizons}")
        if self.delta_t < 1:
            raise InputError(f"Delta_t PSNR needs t >= 1, got {self.delta_t}")
        if self.max_episodes < 1:
            raise InputError(f"--episodes must be >= 1, got {self.max_episodes}")

    @property
    def frames(self) -> int:
        """Frames each evaluated episode contributes: the prompt and the longest horizon."""
        return self.horizons[-1] + 1


@dataclass
class Findings:
    """What the steps of an evaluation add up: figures, and why any were skipped."""

    metrics: dict
    skipped: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)


def evaluate(run: Run, data, out, config: EvalConfig = EvalConfig(), progress: bool = True) -> dict:
    """Compute every metric, write OUT/{metrics.json, *.png, *.gif, index.html}; returns the metrics.
    `data`: one held-out store, or a list of them (one domain each; see the module docstring)."""
    stores = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not stores:
        raise InputError("no held-out store given; pass --data FILE.h5 [FILE.h5 ...]")
    wm = run.world_model(config.world_model)
    out = Path(out)
    if len(stores) == 1:
        return evaluate_domain(run, wm, stores[0], out, config, progress)
    for path in stores:  # every store's resolution and lengths are checked before any work
        with EpisodeStore(path) as store:
            store.resolution_note(wm.image_size)
            held_out_episodes(store, config, Findings({}))
    started = time.time()
    domains = {name: evaluate_domain(run, wm, store, out / name, config, progress)
               for name, store in zip(domain_names(stores), stores)}
    metrics = {"run": str(run.path), "data": [str(s) for s in stores], "domains": domains,
               "code_usage": {name: code_usage(m, wm.num_actions) for name, m in domains.items()},
               "seconds": round(time.time() - started, 1)}
    write_domains_report(out, metrics, config)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    return metrics


def domain_names(stores) -> list[str]:
    """Each store's file name without .h5, numbered where two share one."""
    names = []
    for store in stores:
        stem = Path(store).stem
        names.append(stem if stem not in names else f"{stem}_{len(names) + 1}")
    return names


def code_usage(metrics: dict, num_actions: int) -> list[float] | None:
    """Share of this domain's transitions the LAM gives each latent code (None without a LAM
    or recorded actions: the codes are read in `latent_action_figures`)."""
    if "latent_actions" not in metrics:
        return None
    return [round(row["usage"], 4) for row in metrics["latent_actions"]["per_code"][:num_actions]]


def evaluate_domain(run: Run, wm: Simulator, data, out: Path, config: EvalConfig, progress: bool) -> dict:
    """Every metric of one held-out store, its report written to OUT."""
    started = time.time()
    with EpisodeStore(data) as store:
        found = Findings({"run": str(run.path), "data": str(data), "config": {**asdict(config), "sampling": asdict(config.sampling)}})
        if note := store.resolution_note(wm.image_size):
            found.notes["resolution"] = note
        episodes = held_out_episodes(store, config, found)
        transitions = latent_action_figures(wm, episodes, data, found)
        adapter = adapter_figures(run, transitions, found)
        videos, stability = imagine_episodes(wm, episodes, transitions, adapter, config, progress)
        masks = [resize_masks(e.masks[: config.frames], wm.image_size) for e in episodes] if all(e.has_masks for e in episodes) else None
        if stability:
            found.metrics["token_stability"] = {key: float(np.mean([row[key] for row in stability])) for key in stability[0]}
        else:
            found.skipped["token stability"] = "the change-token world model has no tokens of whole frames"
        curves = fidelity_figures(videos, config, found)
        delta_psnr_figures(curves, config, found)
        fvd_figures(wm, videos, config, found)
        segmenter = fit_segmenter(videos, masks, found) if masks is not None else None
        physics_figures(episodes, videos, masks, segmenter, config, found, data)
        out.mkdir(parents=True, exist_ok=True)
        interaction_figures(wm, episodes, transitions, segmenter, config, found, out)
    found.metrics.update(skipped=found.skipped, notes=found.notes, seconds=round(time.time() - started, 1))
    write_report(out, found.metrics, videos, config)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(found.metrics, indent=2))
    return found.metrics


def held_out_episodes(store: EpisodeStore, config: EvalConfig, found: Findings) -> list[Episode]:
    """The first `max_episodes` episodes long enough for the longest horizon."""
    episodes = list(store)[: config.max_episodes]
    if not episodes:
        raise InputError(f"{store.path} holds no episodes; evaluate on a store with held-out episodes")
    long_enough = [e for e in episodes if e.num_frames >= config.frames]
    if not long_enough:
        longest = max(e.num_frames for e in episodes)
        raise InputError(f"every episode of {store.path} is shorter than the longest horizon + 1 = {config.frames} "
                         f"frames (longest: {longest}); pass --horizons up to {longest - 1}")
    if len(long_enough) < len(episodes):
        found.notes["episodes"] = f"{len(episodes) - len(long_enough)} episodes shorter than {config.frames} frames left out"
    found.metrics["episodes"] = len(long_enough)
    return long_enough


def latent_action_figures(wm: Simulator, episodes, data, found: Findings):
    """Latent codes vs the true action classes (NMI, confusion, per-code effects); the
    transitions they came from, or None when the run has no LAM or the store no usable actions."""
    if wm.lam is None:
        found.skipped["latent actions"] = "the run has no LAM (train one with `genie-robot train lam`)"
    elif not all(e.action_names is not None for e in episodes):
        found.skipped["latent actions"] = f"{data} has no recorded actions"
    else:
        try:
            transitions = action_eval.collect_transitions(wm, episodes)
        except InputError as exc:  # actions of different layouts, or without classes
            found.skipped["latent actions"] = f"{data}: {exc}"
            return None
        table = action_eval.confusion(transitions.latents, transitions.labels, wm.num_actions, len(transitions.label_names))
        found.metrics["latent_actions"] = {
            "per_code": action_eval.per_code_effects(transitions, wm.num_actions),
            "labels": list(transitions.label_names),
            "confusion": table.tolist(),
            "nmi": action_eval.normalized_mutual_information(table),
            "displacement_explained": action_eval.displacement_explained(transitions, wm.num_actions),
            "codes_used": int((table.sum(1) > 0).sum()),
        }
        return transitions
    return None


def adapter_figures(run: Run, transitions, found: Findings):
    """The run's adapter and its accuracy on the held-out transitions, when both exist."""
    if transitions is None:
        found.skipped["adapter"] = "needs latent actions: " + found.skipped["latent actions"]
    elif run.adapter is None:
        found.skipped["adapter"] = (f"the run has no adapter (train one with `genie-robot train adapter --data "
                                    f"STORE_WITH_ARM_COMMANDS.h5 --out {run.path}`)")
    elif run.adapter.config.command_names != transitions.command_names:
        found.skipped["adapter"] = (f"the adapter maps commands {run.adapter.config.command_names} but the episodes "
                                    f"record {transitions.command_names}")
    else:
        found.metrics["adapter"] = action_eval.adapter_accuracy(run.adapter, transitions)
        return run.adapter
    return None


def imagine_episodes(wm: Simulator, episodes, transitions, adapter, config: EvalConfig, progress: bool):
    """Per episode, from its first frame: the imagined rows (one batched session) beside the
    truth and the baselines; also each episode's token stability (video world models). Videos [frames, S, S, 3]."""
    horizon = config.horizons[-1]
    rng = np.random.default_rng(config.seed)
    videos: dict[str, list] = {name: [] for name in ("truth", *ROWS, *BASELINES)}
    stability = []
    for position, episode in enumerate(tqdm(episodes, desc="eval episodes", unit="ep", disable=not progress)):
        truth = resize_video(episode.read_frames(0, config.frames), wm.image_size)
        rows = {"random": rng.integers(0, wm.num_actions, horizon)}
        if transitions is not None:  # the LAM already read this episode (it is causal: same prefix)
            own = transitions.episode == position
            rows["lam"] = transitions.latents[own][:horizon]
            if adapter is not None:
                rows["adapter"] = adapter.to_latent(transitions.commands[own][:horizon])
        elif wm.lam is not None:
            rows["lam"] = wm.infer_actions(truth)
        names = [n for n in ROWS if n in rows]
        # Each row keeps its own sampling seed whichever rows exist, so that a run with and one
        # without an adapter draw the same random-action futures (Delta_t PSNR compares them).
        imagined = wm.imagine(truth[:1], np.stack([rows[n] for n in names]), seed=[config.seed + ROWS.index(n) for n in names],
                              sampling=config.sampling)
        for i, name in enumerate(names):
            videos[name].append(np.concatenate([truth[:1], imagined.frames[i]]))
        if wm.kind == "video":
            tokens = wm.tokenize(truth)
            stability.append(token_stability(tokens.cpu().numpy(), truth, wm.tokenizer.config.patch))
            videos["reconstruction"].append(wm.detokenize(tokens))
        else:
            videos["reconstruction"].append(wm.reconstruct(truth))
        videos["copy_first"].append(np.repeat(truth[:1], config.frames, axis=0))
        videos["truth"].append(truth)
    return videos, stability


def fidelity_figures(videos: dict, config: EvalConfig, found: Findings) -> dict:
    """PSNR and SSIM against the truth at each horizon, for every row and baseline; returns
    the per-episode PSNR/SSIM curves [episodes, frames] by row."""
    truth = np.stack(videos["truth"])
    errors = {name: mse(truth, np.stack(v)) for name, v in videos.items() if name != "truth" and v}
    curves = {name: {"psnr": psnr_of_mse(err), "ssim": ssim(truth, np.stack(videos[name]))} for name, err in errors.items()}
    found.metrics["fidelity"] = {name: {kind: {str(h): float(values[:, h].mean()) for h in config.horizons}
                                        for kind, values in curve.items()} for name, curve in curves.items()}
    # The mean of per-episode PSNRs is dominated by any episode a row gets exactly right (100 dB:
    # copying an episode where nothing moves); the PSNR of the episodes' mean squared error is not.
    for name, err in errors.items():
        pooled = psnr_of_mse(err.mean(0))
        found.metrics["fidelity"][name]["psnr_pooled"] = {str(h): float(pooled[h]) for h in config.horizons}
    found.metrics["fidelity_curves"] = {name: curve["psnr"].mean(0).tolist() for name, curve in curves.items()}
    return curves


def delta_psnr_figures(curves: dict, config: EvalConfig, found: Findings) -> None:
    """Genie's controllability: PSNR at t with the LAM's actions minus with random ones."""
    if "lam" not in curves:
        found.skipped["delta_psnr"] = "needs the LAM"
        return
    if config.delta_t > config.horizons[-1]:
        found.skipped["delta_psnr"] = f"t={config.delta_t} beyond the horizon"
        return
    t = config.delta_t
    lam_t, random_t = curves["lam"]["psnr"][:, t], curves["random"]["psnr"][:, t]
    found.metrics["delta_psnr"] = {"t": t, "delta_psnr": float((lam_t - random_t).mean()),
                                   "psnr_lam": float(lam_t.mean()), "psnr_random": float(random_t.mean()),
                                   "copy_first_psnr": float(curves["copy_first"]["psnr"][:, t].mean())}


def fvd_figures(wm: Simulator, videos: dict, config: EvalConfig, found: Findings) -> None:
    """FVD of each row and baseline against the true clips (I3D features)."""
    episodes, clip = len(videos["truth"]), min(16, config.frames)
    if not config.fvd:
        found.skipped["fvd"] = "turned off (--no-fvd)"
        return
    if episodes < 2 or clip < MIN_FRAMES:
        found.skipped["fvd"] = f"needs >= 2 episodes of >= {MIN_FRAMES} frames (have {episodes} of {clip})"
        return
    i3d = load_i3d(device=str(wm.device))
    clips = lambda name: np.stack([v[:clip] for v in videos[name]])
    real = gaussian_stats(i3d_features(i3d, clips("truth")))
    found.metrics["fvd"] = {"videos": episodes, "frames": clip, **{
        name: frechet_distance(*real, *gaussian_stats(i3d_features(i3d, clips(name))))
        for name in (*ROWS, *BASELINES) if videos[name]}}
    found.notes["fvd"] = (f"{episodes} videos of {clip} frames: FVD from so few videos is biased upward; "
                          "compare the rows with each other, not with published figures")


def physics_figures(episodes, videos: dict, masks, segmenter, config: EvalConfig, found: Findings, data) -> None:
    """Object masks, centroids and soft-body deformation of imagined frames vs MuJoCo's."""
    if masks is None:
        found.skipped["physics"] = f"{data} has no object masks (MuJoCo episodes have them)"
        return
    rows = [name for name in ("lam", "adapter", *BASELINES) if videos[name]]
    if not {"lam", "adapter"} & set(rows):
        found.skipped["physics"] = "needs the LAM or an adapter to turn the episode into latent actions"
        return
    runs: dict[str, list] = {name: [] for name in rows}
    for i, episode in enumerate(episodes):
        deformation = (episode.read_state("soft_deformation")[: config.frames]
                       if "soft_deformation" in episode.state_keys else None)
        for name in rows:
            runs[name].append(compare_rollout(videos[name][i], videos["truth"][i], masks[i], segmenter, deformation))
    found.metrics["physics"] = {name: _physics_summary(r) for name, r in runs.items()}


def fit_segmenter(videos: dict, masks, found: Findings) -> ColourSegmenter:
    """Fit on true frames and on their reconstructions: generated frames come from the same
    decoder, so its colour shifts must not read as missing objects."""
    found.notes["segmentation"] = ("colour lookup classifier fit on the evaluation episodes' MuJoCo masks, "
                                   "paired with the true frames and their tokenizer reconstructions")
    return ColourSegmenter.fit(np.concatenate(videos["truth"] + videos["reconstruction"]), np.concatenate(masks + masks))


INTERACTION_ROWS = ("truth", "reconstruction", "lam", "random")
CONTEXT = 3  # real frames t-2..t before the imagined t+1: the arm's recent motion is visible


def interaction_figures(wm: Simulator, episodes, transitions, segmenter, config: EvalConfig, found: Findings,
                        out: Path) -> None:
    """Predicted interactions, one step ahead: for every transition of the whole episodes where
    MuJoCo moves an object, the frame imagined from the real frames up to t (`CONTEXT` of them)
    with the LAM's latent action of that transition, and with a random one, beside the true next
    frame and its tokenizer reconstruction (the ceiling). The share of MuJoCo's motion each shows
    (physics.motion_shown): 1 = as MuJoCo, 0 = the object stayed."""
    if segmenter is None or wm.lam is None:
        found.skipped["interaction"] = "needs object masks (MuJoCo episodes) and the LAM"
        return
    rng = np.random.default_rng(config.seed)
    sums = {row: np.zeros(2) for row in INTERACTION_ROWS}
    all_moves, lam_shown = [], []  # for the lag fit of the LAM row
    push = None  # (travel, episode position, mask id, t, frames, masks) of the push the picture shows
    for position, episode in enumerate(episodes):
        frames = resize_video(episode.read_frames(), wm.image_size)
        masks = resize_masks(episode.masks[:], wm.image_size)
        if (found_push := largest_push(masks, PUSH_STEPS, CONTEXT - 1)) and (push is None or found_push[2] > push[0]):
            push = (found_push[2], position, found_push[0], found_push[1], frames, masks)
        moves = [m for m in object_moves(masks) if m.t >= CONTEXT - 1]
        if not moves:
            continue
        steps = sorted({m.t for m in moves})
        latents = episode_latents(wm, transitions, position, frames)
        prompts = [frames[t - CONTEXT + 1 : t + 1] for t in steps]
        prompt_actions = [latents[t - CONTEXT + 1 : t] for t in steps]
        session = wm.start_rows(prompts * 2, prompt_actions * 2, seed=config.seed, sampling=config.sampling)
        imagined = session.step(np.concatenate([latents[steps], rng.integers(0, wm.num_actions, len(steps))]))
        real_last = session.row_prompt_frames[:, -1]  # frame t as the model saw it: decoded tokens
        reconstruction = wm.reconstruct(frames)
        row_of = {t: i for i, t in enumerate(steps)}
        pairs = {"truth": (frames[:-1], frames[1:]), "reconstruction": (reconstruction[:-1], reconstruction[1:])}
        at = [m.t for m in moves]
        for row, (before, after) in pairs.items():
            sums[row] += motion_shown(moves, shown_steps(moves, segmenter(before[at]), segmenter(after[at])))
        for row, shift in (("lam", 0), ("random", len(steps))):
            index = [row_of[m.t] + shift for m in moves]
            shown_N2 = shown_steps(moves, segmenter(real_last[index]), segmenter(imagined[index]))
            sums[row] += motion_shown(moves, shown_N2)
            if row == "lam":
                lam_shown.append(shown_N2)
        all_moves += moves
    count = len(all_moves)
    if not count:
        found.skipped["interaction"] = "no object moved in these episodes"
        return
    travelled = sums["truth"][1]
    found.metrics["interaction"] = {"moves": count, "true_travel_px": round(float(travelled), 1),
                                    "context_frames": CONTEXT,
                                    "share_shown": {row: round(float(along / travelled), 3) for row, (along, _) in sums.items()},
                                    # Does the LAM row's next frame move objects on, or fall back to frame t-1?
                                    "lag_fit": lag_fit(all_moves, np.concatenate(lam_shown))}
    if push is not None:
        _, position, mask_id, t, frames, masks = push
        found.metrics["interaction"]["push"] = push_figures(wm, frames, masks, position, mask_id, t, transitions,
                                                            segmenter, config, out)


def episode_latents(wm: Simulator, transitions, position: int, frames) -> np.ndarray:
    """The LAM's latent actions of an evaluated episode (read once in `latent_action_figures`)."""
    return transitions.latents[transitions.episode == position] if transitions is not None else wm.infer_actions(frames)


PUSH_STEPS = 4  # transitions the push picture imagines


def push_figures(wm: Simulator, frames, masks, position: int, mask_id: int, t: int, transitions, segmenter,
                 config: EvalConfig, out: Path) -> dict:
    """Evaluated episode `position`'s largest push over PUSH_STEPS transitions from frame t (its
    frames and masks at the model's size), imagined from the real frames t-2..t with the LAM's
    actions and with random ones: how far the object gets along its true path by the last frame
    (1 = as MuJoCo, 0 = it stayed), and a picture of the three rows."""
    latents = episode_latents(wm, transitions, position, frames)
    rng = np.random.default_rng(config.seed + 1)
    session = wm.start_rows([frames[t - CONTEXT + 1 : t + 1]] * 2, [latents[t - CONTEXT + 1 : t]] * 2, seed=config.seed,
                            sampling=config.sampling)
    imagined_2KHWC = session.rollout(np.stack([latents[t : t + PUSH_STEPS], rng.integers(0, wm.num_actions, PUSH_STEPS)]))
    start_21HWC = session.row_prompt_frames[:, -1:]  # frame t as the model saw it
    rows = {"truth": frames[t : t + PUSH_STEPS + 1],
            **{row: np.concatenate([start_21HWC[i], imagined_2KHWC[i]]) for i, row in enumerate(("lam", "random"))}}
    return {"episode": position, **push_shown(rows, masks, mask_id, t, segmenter, out / "push.png")}


def push_shown(rows: dict, masks, mask_id: int, t: int, segmenter, path: Path) -> dict:
    """One push from frame t, a row per source of its PUSH_STEPS + 1 frames (the true ones first,
    then imagined ones that start from frame t as the model saw it): how far each takes the
    object along its true path by the last frame (1 = as MuJoCo, 0 = it stayed), and their picture."""
    move = Move.over(masks, mask_id, t, PUSH_STEPS)
    shown = {}
    for row, video in rows.items():
        segmented = segmenter(video[[0, -1]])
        along, travel = motion_shown([move], shown_steps([move], segmented[:1], segmented[1:]))
        shown[row] = round(along / travel, 3)
    titles = {row: f"{LABELS.get(row, 'true frames')}: {shown[row]:.2f} of the push" for row in rows}
    picture = plot_push(rows, centroids(masks[t : t + PUSH_STEPS + 1], mask_id), titles, path)
    return {"object": MOVABLE[mask_id], "t": t, "steps": PUSH_STEPS,
            "true_travel_px": round(float(np.linalg.norm(move.step_rc)), 1), "shown": shown, "picture": picture}


def _physics_summary(runs: list[dict]) -> dict:
    """Per-step means over episodes of every per-step physics figure (NaN-safe)."""
    def mean_of(get):
        return [None if np.isnan(v) else round(float(v), 4) for v in nanmean([get(r) for r in runs])]

    summary = {"psnr": mean_of(lambda r: r["psnr"])}
    for key in ("iou", "segmenter_iou", "centroid_error_px", "soft_area_change", "soft_shape_change"):
        summary[key] = {name: mean_of(lambda r, n=name, k=key: r[k][n]) for name in runs[0][key]}
    if "sim_deformation_mm" in runs[0]:
        summary["sim_deformation_mm"] = mean_of(lambda r: r["sim_deformation_mm"])
    summary["motion_followed"] = {}  # pooled over episodes: the ratio of summed travel; None where nothing moved
    for name in runs[0]["motion_followed"]:
        along, travelled = np.sum([r["motion_followed"][name] for r in runs], axis=0)
        summary["motion_followed"][name] = {"share": round(float(along / travelled), 3) if travelled else None,
                                            "true_travel_px": round(float(travelled), 1)}
    return summary
