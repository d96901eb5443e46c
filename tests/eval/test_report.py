"""`genie-robot eval` end to end on a tiny run and real MuJoCo episodes, and its bad inputs."""
import json
import shutil

import pytest

from genie_robot.cli import main
from genie_robot.errors import InputError
from genie_robot.eval.report import EvalConfig, evaluate
from genie_robot.models.world_model import WorldModel
from genie_robot.sampling import SamplingConfig
from genie_robot.sim.generate import generate_dataset

FAST = dict(sampling=SamplingConfig(steps=2), gifs=1)


@pytest.fixture(scope="module")
def mujoco_16(tmp_path_factory):
    path = tmp_path_factory.mktemp("heldout") / "heldout.h5"
    generate_dataset(path, episodes=3, steps=10, size=16, seed=5, progress=False)
    return path


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """The session's tiny run, copied: evaluation saves an adapter into the run directory."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def test_full_report_from_a_tiny_run(run_copy, mujoco_16, tmp_path):
    out = tmp_path / "report"
    wm = WorldModel.load(run_copy)
    metrics = evaluate(wm, run_copy, mujoco_16, out, EvalConfig(horizons=(1, 4, 8), max_episodes=2, **FAST),
                       progress=False)
    assert metrics["skipped"] == {}
    assert set(metrics["fidelity"]) == {"lam", "adapter", "random", "reconstruction", "copy_first"}
    assert set(metrics["fidelity"]["lam"]["psnr"]) == {"1", "4", "8"}
    assert 0 <= metrics["token_stability"]["flicker"] <= 1
    assert metrics["delta_psnr"]["t"] == 4
    assert metrics["delta_psnr"]["delta_psnr"] == pytest.approx(
        metrics["delta_psnr"]["psnr_lam"] - metrics["delta_psnr"]["psnr_random"])
    assert metrics["fvd"]["videos"] == 2 and metrics["fvd"]["frames"] == 9
    assert all(metrics["fvd"][name] >= 0 for name in ("lam", "random", "reconstruction", "copy_first"))
    la = metrics["latent_actions"]
    assert sum(map(sum, la["confusion"])) == 2 * 9 and 0 <= la["nmi"] <= 1
    assert 0 <= metrics["adapter"]["command_to_latent"] <= 1
    assert (run_copy / "adapter" / "model.safetensors").exists()
    physics = metrics["physics"]["lam"]
    assert len(physics["psnr"]) == 9 and set(physics["iou"]) == {"arm", "red_cube", "blue_cylinder", "soft_cube"}
    assert len(physics["sim_deformation_mm"]) == 9
    for name in ("metrics.json", "index.html", "psnr_vs_horizon.png", "latent_action_arrows.png",
                 "confusion.png", "physics.png", "episode_0.gif"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text()
    assert "psnr_vs_horizon.png" in page and "episode_0.gif" in page and "Delta_t PSNR" in page
    assert json.loads((out / "metrics.json").read_text())["episodes"] == 2
    # A second evaluation uses the adapter now saved beside the models.
    again = evaluate(wm, run_copy, mujoco_16, tmp_path / "again", EvalConfig(horizons=(1,), fvd=False, **FAST), progress=False)
    assert "saved" not in again["notes"].get("adapter", "") and "adapter" in again


def test_store_without_actions_or_masks_skips_those_metrics_and_says_why(run_copy, make_store, tmp_path):
    data = make_store(lengths=(6, 6), size=16, with_actions=False)
    wm = WorldModel.load(run_copy)
    metrics = evaluate(wm, run_copy, data, tmp_path / "r", EvalConfig(horizons=(1, 4), **FAST), progress=False)
    assert "arm commands" in metrics["skipped"]["latent actions"]
    assert "latent actions" in metrics["skipped"]["adapter"]
    assert "masks" in metrics["skipped"]["physics"]
    assert "frames" in metrics["skipped"]["fvd"]  # 5-frame clips are too short for I3D
    assert "lam" in metrics["fidelity"] and "delta_psnr" in metrics
    assert "Skipped" in (tmp_path / "r" / "index.html").read_text()


def test_bad_evaluation_data_is_refused_before_any_work(run_copy, make_store, mujoco_16, tmp_path):
    wm = WorldModel.load(run_copy)
    with pytest.raises(InputError, match="--size 16"):
        evaluate(wm, run_copy, make_store("small.h5", lengths=(20,), size=8), tmp_path / "r", progress=False)
    with pytest.raises(InputError, match="shorter than the longest horizon"):
        evaluate(wm, run_copy, mujoco_16, tmp_path / "r", EvalConfig(horizons=(1, 12)), progress=False)
    with pytest.raises(InputError, match="horizons"):
        EvalConfig(horizons=(0,))
    assert not (tmp_path / "r").exists()


def test_cli_eval(run_copy, mujoco_16, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["eval", "--run", str(run_copy), "--data", str(mujoco_16), "--out", str(out), "--horizons", "1", "4",
                 "--maskgit-steps", "2", "--no-fvd", "--gifs", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "index.html" in printed and "delta_psnr" in printed and "skipped fvd" in printed
    assert main(["eval", "--run", str(tmp_path / "nope"), "--data", str(mujoco_16), "--out", str(out)]) == 2
