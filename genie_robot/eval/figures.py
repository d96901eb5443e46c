"""The evaluation report's pictures (PNG plots, side-by-side GIFs) and its index.html."""
from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genie_robot.eval.physics import nanmean  # noqa: E402
from genie_robot.io import atomic_path  # noqa: E402
from genie_robot.media import labelled_columns, write_video  # noqa: E402

LABELS = {"lam": "imagined (LAM actions)", "adapter": "imagined (adapter actions)",
          "random": "imagined (random actions)", "reconstruction": "tokenizer reconstruction",
          "copy_first": "copy first frame"}


def _save(fig, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path.name


def plot_horizon(metrics: dict, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in metrics["fidelity_curves"].items():
        steps = np.arange(1, len(curve))
        ax.plot(steps, curve[1:], marker="o", ms=3, label=LABELS[name], ls="--" if name in ("reconstruction", "copy_first") else "-")
    ax.set(xlabel="frames after the prompt (horizon)", ylabel="PSNR (dB)", title="Fidelity vs horizon")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out / "psnr_vs_horizon.png")


def plot_latent_actions(metrics: dict, out: Path) -> list[str]:
    """The confusion of latent codes with true action classes, and where the store has the
    arm's state, each code's mean hand motion as arrows."""
    la = metrics["latent_actions"]
    rows = [r for r in la["per_code"] if r["count"]]
    images = [_plot_code_arrows(rows, out)] if any("mean_ee_delta_mm" in r for r in rows) else []
    table, labels = np.array(la["confusion"]), la["labels"]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(labels)), 4.5))
    image = ax.imshow(table, cmap="Blues", aspect="auto")
    for (i, j), count in np.ndenumerate(table):
        if count:
            ax.text(j, i, count, ha="center", va="center", fontsize=7, color="white" if count > table.max() / 2 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(table)), xlabel="true action class (arm: behaviour of the command)",
           ylabel="latent action (LAM)", title=f"Latent actions vs true actions (NMI {la['nmi']:.3f})")
    ax.set_xticklabels(labels, rotation=45 if len(labels) > 9 else 0, ha="right" if len(labels) > 9 else "center")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return images + [_save(fig, out / "confusion.png")]


def _plot_code_arrows(rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(5, 5))
    for r in rows:
        dx, dy, dz = (r["mean_ee_delta_mm"] + [0, 0, 0])[:3]
        ax.annotate("", xy=(dx, dy), xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=1 + 6 * r["usage"],
                                                                    color=plt.cm.coolwarm(0.5 + np.clip(dz, -5, 5) / 10)))
        ax.text(dx, dy, f" {r['code']} ({100 * r['usage']:.0f}%, {r['top_behaviour']})", fontsize=8)
    span = max([abs(v) for r in rows for v in r["mean_ee_delta_mm"][:2]] + [1]) * 1.3
    ax.set(xlim=(-span, span), ylim=(-span, span), xlabel="mean end-effector dx (mm/step)",
           ylabel="mean dy (mm/step)", title="Latent actions: mean arm motion\n(width = usage, colour = dz: blue down, red up)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    return _save(fig, out / "latent_action_arrows.png")


def plot_physics(metrics: dict, out: Path) -> str:
    """Means over the movable objects per step, one line per rollout; per-object figures are
    in the report's table and metrics.json."""
    physics = metrics["physics"]
    as_float = lambda values: np.array([np.nan if v is None else v for v in values], dtype=float)
    movable = lambda per_object: nanmean([as_float(v) for k, v in per_object.items() if k != "arm"], axis=0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, (row, p) in enumerate(physics.items()):
        style = dict(color=f"C{i}", ls="--" if row in ("reconstruction", "copy_first") else "-")
        axes[0].plot(movable(p["iou"]), label=LABELS[row], **style)
        axes[1].plot(movable(p["centroid_error_px"]), label=LABELS[row], **style)
        axes[2].plot(as_float(p["soft_shape_change"]["imagined"]), label=LABELS[row], **style)
    first = next(iter(physics.values()))
    axes[0].plot(movable(first["segmenter_iou"]), ":", color="k", label="segmenter on true frames")
    axes[2].plot(as_float(first["soft_shape_change"]["mujoco"]), color="k", label="MuJoCo masks")
    if "sim_deformation_mm" in first:
        twin = axes[2].twinx()
        twin.plot(as_float(first["sim_deformation_mm"]), color="grey", ls="-.", label="simulator vertex deformation")
        twin.set_ylabel("simulator deformation (mm RMS)")
        twin.legend(fontsize=7, loc="lower right")
    axes[0].set(title="Mask IoU vs MuJoCo (movable objects)", xlabel="step", ylabel="IoU")
    axes[1].set(title="Object centroid error (movable objects)", xlabel="step", ylabel="pixels")
    axes[2].set(title="Soft object shape change", xlabel="step", ylabel="1 - aligned IoU with frame 0")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, out / "physics.png")


PUSH_CROP = 32  # pixels of the model's frame around the pushed object the picture shows


def plot_push(rows: dict, track_K2: np.ndarray, titles: dict, path: Path) -> str:
    """One push, a row per source of frames [K, H, W, 3] (the true ones, imagined ones), cropped
    around the object's true path, which every frame marks (+: where MuJoCo has it then)."""
    size = rows[next(iter(rows))].shape[1]
    crop = min(PUSH_CROP, size)
    centre = np.nan_to_num(nanmean(track_K2), nan=size / 2)
    top, left = (np.clip(np.round(centre - crop / 2), 0, size - crop)).astype(int)
    steps = len(track_K2)
    fig, axes = plt.subplots(len(rows), steps, figsize=(1.9 * steps, 2.1 * len(rows)), squeeze=False)
    for r, (row, frames) in enumerate(rows.items()):
        for k in range(steps):
            ax = axes[r, k]
            ax.imshow(frames[k, top : top + crop, left : left + crop], interpolation="nearest")
            ax.plot(track_K2[k, 1] - left, track_K2[k, 0] - top, "+", color="magenta", ms=9, mew=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t + {k}" if k else "t", fontsize=9)
        axes[r, 0].set_ylabel(titles[row], fontsize=8, rotation=0, ha="right", va="center", wrap=True)
    return _save(fig, path)


def write_gifs(videos: dict, count: int, out: Path) -> list[str]:

    names = [n for n in ("truth", "reconstruction", "lam", "adapter", "random") if videos[n]]
    short = {"truth": "truth", "reconstruction": "recon", "lam": "LAM acts", "adapter": "adapter", "random": "random"}
    written = []
    for i in range(min(count, len(videos["truth"]))):
        video = labelled_columns([videos[n][i] for n in names], [short[n] for n in names])
        written.append(write_video(out / f"episode_{i}.gif", video, fps=5).name)
    return written


def _table(rows: list[list], header: list[str]) -> str:
    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)
    return f"<table><tr>{cells(header, 'th')}</tr>" + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</table>"


def _num(value, digits: int = 1, unit: str = "", signed: bool = False) -> str:
    """A figure as a person reads it: rounded, with its unit; a dash where there is none."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:{'+' if signed else ''}.{digits}f}{' ' + unit if unit else ''}"


def _mean(values) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None


def _section(title: str, reading: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2><p class='reading'>{html.escape(reading)}</p>{body}"


def _fidelity(metrics: dict, horizons: list[str]) -> str:
    fidelity = metrics["fidelity"]
    rows = [[LABELS[n]] + [f"{_num(f['psnr'][h], 1, 'dB')} / {_num(f['ssim'][h], 2)}" for h in horizons]
            for n, f in fidelity.items()]
    for kind, label in (("psnr", "minus copy"), ("psnr_pooled", "minus copy, PSNR of the mean MSE")):
        for name in ("lam", "adapter"):
            if name in fidelity:
                rows.append([f"{LABELS[name]} {label}"] + [_num(fidelity[name][kind][h] - fidelity["copy_first"][kind][h], 1, "dB",
                                                                signed=True) for h in horizons])
    reading = ("PSNR (dB) / SSIM of each imagined frame against the true frame t steps after the prompt, averaged over "
               "episodes. The tokenizer reconstruction is the ceiling of any generation; copying the first frame is a "
               "model that predicts no motion. A world model that simulates beats copy-first with the LAM's or the "
               "adapter's actions at every horizon, and beats random actions. An episode in which nothing moves is "
               "copied exactly (100 dB) and lifts copy's mean PSNR; the PSNR of the episodes' mean squared error "
               "(last rows) is not moved by it.")
    return _section("Fidelity against horizon", reading, _table(rows, ["rollout"] + [f"t = {h}" for h in horizons]))


def _controllability(d: dict) -> str:
    reading = ("Genie's controllability metric: PSNR at t of the frame imagined with the latent actions the LAM reads "
               "from the true video, minus the same with uniformly random actions. 0 dB means the model ignores its "
               "actions; Genie reports about 1.7 to 2.1 dB at scale.")
    body = (f"<p>Delta_t PSNR at t = {d['t']}: <b>{_num(d['delta_psnr'], 2, 'dB', signed=True)}</b> "
            f"(LAM actions {_num(d['psnr_lam'], 1, 'dB')}, random actions {_num(d['psnr_random'], 1, 'dB')}, "
            f"copy first frame {_num(d['copy_first_psnr'], 1, 'dB')})</p>")
    return _section("Controllability (Delta_t PSNR)", reading, body)


def _fvd(f: dict) -> str:
    reading = (f"Frechet Video Distance between the true clips and each row's, from I3D (Kinetics-400) features of "
               f"{f['videos']} videos of {f['frames']} frames; lower is better. The reconstruction is the floor, copy-first "
               "the no-motion baseline. So few videos bias FVD upward: compare rows, not published figures.")
    return _section("FVD", reading, _table([[LABELS[n], _num(f[n], 0)] for n in LABELS if n in f], ["rollout", "FVD"]))


def _latent_actions(la: dict) -> str:
    reading = ("What each latent action stands for on these episodes: the true action class it most often codes (for the "
               "arm the behaviour of the command, with the hand's motion read from the recorded state; for games the "
               "joystick action). NMI between latent codes and those classes: 0 is chance, 1 a one-to-one naming; on "
               "the arm, the NMI of labels read from the hand's true motion (`benchmarks/motion_labels.py`) is a practical "
               "ceiling. "
               "Hand motion explained: the share of the hand's displacement variance per axis that "
               "knowing the code accounts for (R^2 of each code's mean displacement), free of the commands' label noise.")
    rows = [[r["code"], r["count"], _num(100 * r["usage"], 1, "%"),
             ", ".join(_num(v, 1, signed=True) for v in r["mean_ee_delta_mm"]) + " mm" if "mean_ee_delta_mm" in r else "-",
             _num(r.get("mean_gripper_delta"), 2, signed=True), r.get("top_behaviour", "-"),
             _num(100 * r["top_share"], 0, "%") if "top_share" in r else "-"] for r in la["per_code"]]
    explained = la.get("displacement_explained")
    motion = ("" if explained is None else ", hand motion explained by the code (x, y, z): "
              + ", ".join(_num(100 * v, 0, "%") for v in explained))
    body = (f"<p>NMI <b>{_num(la['nmi'], 2)}</b>, {la['codes_used']} codes used{motion}</p>"
            + _table(rows, ["code", "transitions", "usage", "mean hand move (x, y, z)", "mean gripper change",
                            "top true action", "its share"]))
    return _section("Latent actions against true actions", reading, body)


def _adapter(a: dict) -> str:
    reading = ("The run's adapter on these episodes' transitions. Command to latent: does it pick the latent action the "
               "LAM read? Latent to behaviour: does a latent action's command have the true behaviour? Each beside "
               "always answering the most common class; a useful adapter is well above it.")
    rows = [["arm command -> latent action", _num(100 * a["command_to_latent"], 1, "%"),
             _num(100 * a["command_to_latent_majority"], 1, "%")],
            ["latent action -> arm behaviour", _num(100 * a["latent_to_behaviour"], 1, "%"),
             _num(100 * a["latent_to_behaviour_majority"], 1, "%")]]
    body = _table(rows, ["direction", "accuracy", "majority class"]) + f"<p>{a['transitions']} transitions</p>"
    return _section("Action adapter", reading, body)


def _physics(physics: dict) -> str:
    reading = ("Objects segmented (by colour) from the imagined frames against MuJoCo's true masks, mean over the "
               "generated steps. The segmenter's IoU on the true frames is the ceiling of what this can measure; the "
               "copy-first row is what no motion scores, the reconstruction row what the tokenizer keeps. Motion "
               "followed: how far the imagined object travels along the real one's path, as a share of the real "
               "travel, over the steps where the real one had moved (1: as far, 0: stays put; pooled over episodes).")
    rows = []
    for row, p in physics.items():
        for name, iou in p["iou"].items():
            followed = p["motion_followed"][name]
            rows.append([LABELS[row], name, _num(_mean(iou[1:]), 2), _num(_mean(p["segmenter_iou"][name][1:]), 2),
                         _num(_mean(p["centroid_error_px"][name][1:]), 1, "px"), _num(followed["share"], 2),
                         _num(followed["true_travel_px"], 0, "px")])
    return _section("Imagined against MuJoCo physics", reading,
                    _table(rows, ["rollout", "object", "mask IoU", "segmenter IoU on truth", "centroid error",
                                  "motion followed", "real travel (summed)"]))


def _interaction(interaction: dict) -> str:
    reading = (f"Predicted interactions one step ahead: on every transition where MuJoCo moves an object, the next "
               f"frame imagined from the real frames up to it ({interaction['context_frames']}) with the LAM's latent "
               "action of that transition, and with a random one. Share of MuJoCo's motion the frame shows, the "
               "object found by its colour near where it was: 1 = as MuJoCo, 0 = the object stayed. The true next "
               "frame and its tokenizer reconstruction are the ceiling; a model that follows its actions scores well "
               "above the random row.")
    names = {"truth": "true next frame", "reconstruction": LABELS["reconstruction"], "lam": LABELS["lam"],
             "random": LABELS["random"]}
    rows = [[names[row], _num(share, 2)] for row, share in interaction["share_shown"].items()]
    body = _table(rows, ["next frame", f"motion shown ({interaction['moves']} object moves, "
                                       f"{_num(interaction['true_travel_px'], 0, 'px')} in all)"])
    if lag := interaction["lag_fit"]:
        body += (f"<p>The LAM row's object step, fit on MuJoCo's steps ({lag['moves']} moves): "
                 f"{_num(lag['step'], 2, signed=True)} x the step t -> t+1 {_num(lag['previous_step'], 2, signed=True)} x "
                 "the step t-1 -> t (moving objects on: 1 and 0; falling back to frame t-1: 0 and -1).</p>")
    if push := interaction.get("push"):
        shown = ", ".join(f"{LABELS.get(row, 'true frames')} {_num(share, 2)}" for row, share in push["shown"].items())
        body += (f"<p>The largest push over {push['steps']} steps (episode {push['episode']}, {push['object']} from frame "
                 f"{push['t']}, {_num(push['true_travel_px'], 1, ' px')}), imagined from the real frames up to it; "
                 f"share of its travel shown by the last frame: {shown} (picture below).</p>")
    return _section("Predicted interactions, one step ahead", reading, body)


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto} table{border-collapse:collapse} "
         "td,th{border:1px solid #ccc;padding:3px 8px} .reading{color:#444;max-width:850px}")


def write_report(out: Path, metrics: dict, videos: dict, config) -> Path:
    images = [plot_horizon(metrics, out)]
    if "latent_actions" in metrics:
        images += plot_latent_actions(metrics, out)
    if "physics" in metrics:
        images.append(plot_physics(metrics, out))
    if picture := metrics.get("interaction", {}).get("push", {}).get("picture"):
        images.append(picture)
    gifs = write_gifs(videos, config.gifs, out)

    parts = [f"<h1>genie-robot evaluation</h1><p>run <code>{html.escape(metrics['run'])}</code> ({config.world_model} "
             f"world model), data "
             f"<code>{html.escape(metrics['data'])}</code>, {metrics['episodes']} episodes, "
             f"{config.sampling.steps} MaskGIT steps at temperature {config.sampling.temperature:g}, "
             f"{_num(metrics['seconds'], 0, 's')}</p>",
             _fidelity(metrics, [str(h) for h in config.horizons])]
    sections = (("delta_psnr", _controllability), ("fvd", _fvd), ("latent_actions", _latent_actions),
                ("adapter", _adapter), ("physics", _physics), ("interaction", _interaction))
    parts += [render(metrics[key]) for key, render in sections if key in metrics]
    parts += [f'<p><img src="{html.escape(i)}"></p>' for i in images]
    parts.append("<h2>Rollouts</h2>" + "".join(f'<img src="{html.escape(g)}"> ' for g in gifs))
    if metrics["skipped"]:
        parts.append("<h2>Skipped</h2>" + _table([[k, v] for k, v in metrics["skipped"].items()], ["metric", "why"]))
    if metrics["notes"]:
        parts.append("<h2>Notes</h2>" + _table([[k, v] for k, v in metrics["notes"].items()], ["topic", "note"]))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>genie-robot evaluation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"


def plot_code_usage(usage: dict, out: Path) -> str:
    """Grouped bars: the share of each domain's transitions given each latent code."""
    domains = [d for d, u in usage.items() if u is not None]
    codes = np.arange(len(usage[domains[0]]))
    width = 0.8 / len(domains)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(codes) * len(domains) / 2), 3.5))
    for i, domain in enumerate(domains):
        ax.bar(codes + (i - (len(domains) - 1) / 2) * width, 100 * np.array(usage[domain]), width, label=domain)
    ax.set(xticks=codes, xlabel="latent action", ylabel="share of transitions (%)", title="Latent-code usage per domain")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out / "code_usage.png")


def _domain_rows(domains: dict, horizons: list[str]) -> list[list]:
    rows = []
    for name, m in domains.items():
        fidelity, last = m["fidelity"], horizons[-1]
        copy = fidelity["copy_first"]["psnr"]
        fvd = m.get("fvd", {})
        rows.append([name, m["episodes"],
                     " / ".join(_num(fidelity["lam"]["psnr"][h] - copy[h], 1, signed=True) for h in horizons)
                     if "lam" in fidelity else "-",
                     _num(fidelity.get("lam", {}).get("psnr", {}).get(last), 1), _num(copy[last], 1),
                     _num(fidelity["reconstruction"]["psnr"][last], 1),
                     _num(m["delta_psnr"]["delta_psnr"], 2, signed=True) if "delta_psnr" in m else "-",
                     " / ".join(_num(fvd.get(k), 0) for k in ("lam", "copy_first", "reconstruction")) if fvd else "-",
                     _num(m["latent_actions"]["nmi"], 2) if "latent_actions" in m else "-",
                     m["latent_actions"]["codes_used"] if "latent_actions" in m else "-"])
    return rows


def _code_meanings(domains: dict, num_codes: int) -> list[list]:
    """Per latent code and domain: the true action it most often codes, its share, the code's usage."""
    rows = []
    for code in range(num_codes):
        row = [code]
        for m in domains.values():
            per_code = m.get("latent_actions", {}).get("per_code")
            r = per_code[code] if per_code else {}
            row.append(f"{r['top_behaviour']} ({_num(100 * r['top_share'], 0, '%')} of its uses; used "
                       f"{_num(100 * r['usage'], 0, '%')})" if r.get("count") else "-")
        rows.append(row)
    return rows


def write_domains_report(out: Path, metrics: dict, config) -> Path:
    """OUT/index.html over per-domain reports already written to OUT/<domain>/."""
    domains, horizons = metrics["domains"], [str(h) for h in config.horizons]
    parts = [f"<h1>genie-robot evaluation: {len(domains)} domains</h1><p>run <code>{html.escape(metrics['run'])}</code>, "
             f"{config.sampling.steps} MaskGIT steps at temperature {config.sampling.temperature:g}, "
             f"{_num(metrics['seconds'], 0, 's')}. Each domain's full report: "
             + ", ".join(f'<a href="{html.escape(d)}/index.html">{html.escape(d)}</a>' for d in domains) + "</p>"]
    reading = ("Each domain's held-out episodes on their own: imagined with the LAM's actions minus copying the first "
               "frame (PSNR, dB) at each horizon; PSNR at the longest horizon for the LAM rollout, copy-first and the "
               "tokenizer's reconstruction (the ceiling); Delta_t PSNR (LAM vs random actions); FVD of the LAM row, "
               "copy-first and reconstruction; NMI of latent codes with the domain's true action classes.")
    header = ["domain", "episodes", f"LAM minus copy at t = {', '.join(horizons)} (dB)", f"LAM t={horizons[-1]} (dB)",
              "copy (dB)", "recon (dB)", "Delta_t PSNR", "FVD LAM / copy / recon", "NMI", "codes used"]
    parts.append(_section("Per domain", reading, _table(_domain_rows(domains, horizons), header)))
    usage = metrics["code_usage"]
    if any(u is not None for u in usage.values()):
        num_codes = len(next(u for u in usage.values() if u is not None))
        reading = ("Which latent codes each domain uses, and what each code stands for in each domain: a code that means "
                   "one motion everywhere would name matching actions across the columns (e.g. the arm moving "
                   "sideways and the game agent moving LEFT).")
        parts.append(_section("Latent codes across domains", reading,
                              f'<p><img src="{plot_code_usage(usage, out)}"></p>'
                              + _table(_code_meanings(domains, num_codes), ["code", *domains])))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>genie-robot evaluation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"
