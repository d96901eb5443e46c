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
from genie_robot.sim.controllers import BEHAVIOURS  # noqa: E402

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
    rows = [r for r in metrics["latent_actions"]["per_code"] if r["count"]]
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
    arrows = _save(fig, out / "latent_action_arrows.png")

    table = np.array(metrics["latent_actions"]["confusion"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    image = ax.imshow(table, cmap="Blues")
    for (i, j), count in np.ndenumerate(table):
        if count:
            ax.text(j, i, count, ha="center", va="center", fontsize=7, color="white" if count > table.max() / 2 else "black")
    ax.set(xticks=range(len(BEHAVIOURS)), xticklabels=BEHAVIOURS, yticks=range(len(table)),
           xlabel="arm behaviour (from the recorded command)", ylabel="latent action (LAM)",
           title=f"Latent actions vs arm behaviours (NMI {metrics['latent_actions']['nmi']:.3f})")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return [arrows, _save(fig, out / "confusion.png")]


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


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_report(out: Path, metrics: dict, videos: dict, config) -> Path:
    images = [plot_horizon(metrics, out)]
    if "latent_actions" in metrics:
        images += plot_latent_actions(metrics, out)
    if "physics" in metrics:
        images.append(plot_physics(metrics, out))
    gifs = write_gifs(videos, config.gifs, out)

    horizons = [str(h) for h in config.horizons]
    parts = [f"<h1>genie-robot evaluation</h1><p>run <code>{html.escape(metrics['run'])}</code>, data "
             f"<code>{html.escape(metrics['data'])}</code>, {metrics['episodes']} episodes, "
             f"{config.sampling.steps} MaskGIT steps, {metrics['seconds']} s</p>",
             "<h2>Fidelity (PSNR dB / SSIM at horizon)</h2>",
             _table([[LABELS[n]] + [f"{f['psnr'][h]:.2f} / {f['ssim'][h]:.3f}" for h in horizons]
                     for n, f in metrics["fidelity"].items()], ["rollout"] + [f"t={h}" for h in horizons])]
    if "delta_psnr" in metrics:
        d = metrics["delta_psnr"]
        parts.append(f"<p>Delta_t PSNR (t={d['t']}): <b>{d['delta_psnr']:.3f} dB</b> (LAM actions {d['psnr_lam']:.2f}, "
                     f"random {d['psnr_random']:.2f}, copy first frame {d['copy_first_psnr']:.2f})</p>")
    if "fvd" in metrics:
        f = metrics["fvd"]
        parts.append(f"<h2>FVD ({f['videos']} videos x {f['frames']} frames, I3D Kinetics-400)</h2>"
                     + _table([[LABELS[n], f"{f[n]:.1f}"] for n in LABELS if n in f], ["rollout", "FVD"]))
    if "latent_actions" in metrics:
        la = metrics["latent_actions"]
        parts.append(f"<h2>Latent actions vs arm behaviours</h2><p>NMI {la['nmi']:.3f}, {la['codes_used']} codes used</p>"
                     + _table([[r["code"], r["count"], f"{100 * r['usage']:.1f}%", r.get("mean_ee_delta_mm", "-"),
                                _fmt(r.get("mean_gripper_delta", "-")), r.get("top_behaviour", "-")] for r in la["per_code"]],
                              ["code", "count", "usage", "mean EE delta (mm)", "mean gripper delta", "top behaviour"]))
    if "adapter" in metrics:
        parts.append("<h2>Adapter accuracy</h2>" + _table([[k, _fmt(v)] for k, v in metrics["adapter"].items()], ["figure", "value"]))
    if "physics" in metrics:
        rows = []
        for row, p in metrics["physics"].items():
            for name, iou in p["iou"].items():
                valid = [v for v in iou[1:] if v is not None]
                ceiling = [v for v in p["segmenter_iou"][name][1:] if v is not None]
                err = [v for v in p["centroid_error_px"][name][1:] if v is not None]
                rows.append([LABELS[row], name, _fmt(float(np.mean(valid))) if valid else "-",
                             _fmt(float(np.mean(ceiling))) if ceiling else "-", _fmt(float(np.mean(err))) if err else "-"])
        parts.append("<h2>Imagined vs MuJoCo physics (mean over generated steps)</h2>"
                     + _table(rows, ["actions", "object", "mask IoU", "segmenter IoU on truth", "centroid error (px)"]))
    parts += [f'<p><img src="{html.escape(i)}"></p>' for i in images]
    parts.append("<h2>Rollouts</h2>" + "".join(f'<img src="{html.escape(g)}"> ' for g in gifs))
    if metrics["skipped"]:
        parts.append("<h2>Skipped</h2>" + _table([[k, v] for k, v in metrics["skipped"].items()], ["metric", "why"]))
    if metrics["notes"]:
        parts.append("<h2>Notes</h2>" + _table([[k, v] for k, v in metrics["notes"].items()], ["topic", "note"]))
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>genie-robot evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"
