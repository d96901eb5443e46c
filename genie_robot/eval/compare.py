"""Several evaluation reports of one held-out store side by side: the table that says which
run (recipe, mixture, budget) simulates better. Reads each report's metrics.json (for a
multi-domain report, name the domain's folder), computes nothing new."""
from __future__ import annotations

import json
from pathlib import Path

from genie_robot.errors import InputError

IOU_STEP = 8  # the physics row reads object IoU this many frames after the prompt


def load_report(path: str | Path) -> dict:
    """A report folder's (or its metrics.json's) metrics; a multi-domain report is refused with
    the folders of its domains, since figures of different domains do not compare."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{path} has no metrics.json; pass a folder written by `genie-robot eval`")
    try:
        metrics = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{file} is not valid JSON ({exc}); re-run `genie-robot eval` to rewrite it") from None
    if "domains" in metrics:
        raise InputError(f"{path} holds {len(metrics['domains'])} domains; pass one of "
                         + ", ".join(str(file.parent / d) for d in metrics["domains"]))
    return metrics


def _rows(metrics: dict) -> dict[str, float | None]:
    fidelity, rows = metrics["fidelity"], {}
    copy = fidelity["copy_first"]["psnr"]
    for h, value in copy.items():
        rows[f"LAM minus copy, t={h} (dB)"] = fidelity["lam"]["psnr"][h] - value if "lam" in fidelity else None
    d = metrics.get("delta_psnr")
    rows[f"Delta_{d['t'] if d else 't'} PSNR (dB)"] = d["delta_psnr"] if d else None
    rows["FVD, LAM actions"] = metrics.get("fvd", {}).get("lam")
    rows["tokenizer PSNR, t=1 (dB)"] = fidelity["reconstruction"]["psnr"].get("1")
    la = metrics.get("latent_actions")
    rows["NMI latent codes vs true actions"] = la["nmi"] if la else None
    rows["latent codes used"] = la["codes_used"] if la else None
    adapter = metrics.get("adapter")
    rows["adapter command -> latent accuracy"] = adapter["command_to_latent"] if adapter else None
    physics = metrics.get("physics", {}).get("lam")
    if physics:
        for name, per_step in physics["iou"].items():
            value = per_step[IOU_STEP] if len(per_step) > IOU_STEP else None
            rows[f"{name} mask IoU, t={IOU_STEP}"] = value
    return rows


def compare_table(reports: dict[str, dict]) -> str:
    """A Markdown table: one row per figure, one column per named report."""
    columns = {name: _rows(metrics) for name, metrics in reports.items()}
    figures = list(dict.fromkeys(key for rows in columns.values() for key in rows))
    cell = lambda v: "-" if v is None else (f"{v:d}" if isinstance(v, int) else f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}")
    lines = ["| figure | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {key} | " + " | ".join(cell(rows.get(key)) for rows in columns.values()) + " |" for key in figures]
    return "\n".join(lines)
