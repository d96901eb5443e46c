"""`genie-robot compare`: reports side by side, computed from their metrics.json alone."""
import json

import pytest

from genie_robot.cli import main
from genie_robot.errors import InputError
from genie_robot.eval.compare import compare_table, load_report


def metrics(lam_psnr: float, nmi: float) -> dict:
    psnr = lambda v: {"psnr": {"1": v, "8": v - 2}}
    return {"fidelity": {"lam": psnr(lam_psnr), "copy_first": psnr(20.0), "reconstruction": psnr(30.0)},
            "delta_psnr": {"t": 4, "delta_psnr": 0.5}, "fvd": {"lam": 1234.4},
            "latent_actions": {"nmi": nmi, "codes_used": 8},
            "physics": {"lam": {"iou": {"arm": [1.0] + [0.4] * 8}}}}


def test_table_lines_up_the_figures_of_each_report(tmp_path, capsys):
    for name, m in (("arm", metrics(22.0, 0.3)), ("mix", metrics(21.0, 0.2))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
    assert main(["compare", str(tmp_path / "arm"), str(tmp_path / "mix"), "--names", "arm-only", "mixture",
                 "--out", str(tmp_path / "table.md")]) == 0
    table = capsys.readouterr().out
    assert "| figure | arm-only | mixture |" in table
    assert "| LAM minus copy, t=8 (dB) | 2.00 | 1.00 |" in table and "| NMI latent codes vs true actions | 0.30 | 0.20 |" in table
    assert "| FVD, LAM actions | 1234 | 1234 |" in table
    assert "| arm mask IoU, t=8 | 0.40 | 0.40 |" in table and "| adapter command -> latent accuracy | - | - |" in table
    assert (tmp_path / "table.md").read_text().strip() == table.strip()


def test_a_multi_domain_report_or_a_missing_one_is_refused_with_the_fix(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"domains": {"heldout": {}, "coinrun": {}}}))
    with pytest.raises(InputError, match="2 domains; pass one of .*heldout"):
        load_report(tmp_path)
    with pytest.raises(InputError, match="no metrics.json"):
        load_report(tmp_path / "nope")
    assert compare_table({"a": metrics(22.0, 0.3)}).count("\n") > 5
