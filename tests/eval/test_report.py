"""`genie-robot eval` end to end on a tiny run and real MuJoCo episodes, and its bad inputs."""
import hashlib
import json
import re

import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeWriter
from genie_robot.errors import InputError, StoreError
from genie_robot.eval.report import EvalConfig, evaluate
from genie_robot.models.run import Run
from genie_robot.sampling import SamplingConfig
from genie_robot.sim.generate import generate_dataset
from genie_robot.sim.scene import OBJECTS

FAST = dict(sampling=SamplingConfig(steps=2), gifs=1)


@pytest.fixture(scope="module")
def heldout_32(tmp_path_factory):
    """Held-out MuJoCo episodes (another seed) at 32 px, twice the tiny model's resolution."""
    path = tmp_path_factory.mktemp("heldout") / "heldout.h5"
    generate_dataset(path, episodes=3, steps=10, size=32, seed=5, progress=False)
    return path


def run_digest(run) -> dict:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*")) if p.is_file()}


def test_full_report_reads_the_run_and_resizes_the_episodes(planning_run, heldout_32, tmp_path):
    out = tmp_path / "report"
    before = run_digest(planning_run)
    metrics = evaluate(Run.load(planning_run), heldout_32, out, EvalConfig(horizons=(1, 4, 8), max_episodes=2, **FAST),
                       progress=False)
    assert run_digest(planning_run) == before, "evaluation must not write into the run"
    # At the tiny model's 16 px no object in these 10-frame episodes moves a whole pixel in one step.
    assert metrics["skipped"] == {"interaction": "no object moved in these episodes"}
    assert "32x32 are centre-cropped and downscaled to the model's 16x16" in metrics["notes"]["resolution"]
    assert set(metrics["fidelity"]) == {"lam", "adapter", "random", "reconstruction", "copy_first"}
    assert set(metrics["fidelity"]["lam"]["psnr"]) == {"1", "4", "8"}
    for row in metrics["fidelity"].values():  # -log is convex: the PSNR of a mean MSE never exceeds the mean PSNR
        assert all(row["psnr_pooled"][h] <= row["psnr"][h] + 1e-9 for h in ("1", "4", "8"))
    assert 0 <= metrics["token_stability"]["flicker"] <= 1
    assert metrics["delta_psnr"]["t"] == 4
    assert metrics["delta_psnr"]["delta_psnr"] == pytest.approx(
        metrics["delta_psnr"]["psnr_lam"] - metrics["delta_psnr"]["psnr_random"])
    assert metrics["fvd"]["videos"] == 2 and metrics["fvd"]["frames"] == 9
    assert all(metrics["fvd"][name] >= 0 for name in ("lam", "random", "reconstruction", "copy_first"))
    la = metrics["latent_actions"]
    assert sum(map(sum, la["confusion"])) == 2 * 9 and 0 <= la["nmi"] <= 1
    assert 0 <= metrics["adapter"]["command_to_latent"] <= 1
    physics = metrics["physics"]["lam"]
    assert len(physics["psnr"]) == 9 and set(physics["iou"]) == {"arm", "red_cube", "blue_cylinder", "soft_cube"}
    assert len(physics["sim_deformation_mm"]) == 9
    # The arm moves in every episode: how far the imagined one follows it is a number, and copying
    # the first frame follows nothing.
    assert physics["motion_followed"]["arm"]["true_travel_px"] > 0 and physics["motion_followed"]["arm"]["share"] is not None
    assert metrics["physics"]["copy_first"]["motion_followed"]["arm"]["share"] == 0
    for name in ("metrics.json", "index.html", "psnr_vs_horizon.png", "latent_action_arrows.png",
                 "confusion.png", "physics.png", "episode_0.gif"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text()
    assert "psnr_vs_horizon.png" in page and "episode_0.gif" in page and "Delta_t PSNR" in page and "motion followed" in page
    assert " dB" in page and "majority class" in page and "copy first frame minus" not in page
    assert not re.search(r"\d\.\d{4,}", page), "figures in the report are rounded for reading"
    assert json.loads((out / "metrics.json").read_text())["episodes"] == 2


def test_run_without_adapter_skips_its_accuracy_and_names_the_stage(tiny_run, planning_run, heldout_32, tmp_path):
    config = EvalConfig(horizons=(1, 4), fvd=False, **FAST)
    metrics = evaluate(Run.load(tiny_run), heldout_32, tmp_path / "r", config, progress=False)
    assert "genie-robot train adapter" in metrics["skipped"]["adapter"]
    assert "adapter" not in metrics["fidelity"] and "lam" in metrics["fidelity"]
    # planning_run is tiny_run plus an adapter: the rows both have are sampled identically.
    with_adapter = evaluate(Run.load(planning_run), heldout_32, tmp_path / "a", config, progress=False)
    assert "adapter" in with_adapter["fidelity"]
    for row in ("lam", "random"):
        assert with_adapter["fidelity"][row] == metrics["fidelity"][row], row


def test_store_without_actions_or_masks_skips_those_metrics_and_says_why(tiny_run, make_store, tmp_path):
    data = make_store(lengths=(6, 6), size=16, with_actions=False)
    metrics = evaluate(Run.load(tiny_run), data, tmp_path / "r", EvalConfig(horizons=(1, 4), **FAST), progress=False)
    assert "no recorded actions" in metrics["skipped"]["latent actions"]
    assert "latent actions" in metrics["skipped"]["adapter"]
    assert "masks" in metrics["skipped"]["physics"]
    assert "frames" in metrics["skipped"]["fvd"]  # 5-frame clips are too short for I3D
    assert "lam" in metrics["fidelity"] and "delta_psnr" in metrics
    assert "Skipped" in (tmp_path / "r" / "index.html").read_text()


def test_bad_evaluation_data_is_refused_before_any_work(tiny_run, make_store, heldout_32, tmp_path):
    run = Run.load(tiny_run)
    with pytest.raises(StoreError, match="smaller than the model.s 16x16; convert the episodes at --size 16"):
        evaluate(run, make_store("small.h5", lengths=(20,), size=8), tmp_path / "r", progress=False)
    with pytest.raises(InputError, match="shorter than the longest horizon"):
        evaluate(run, heldout_32, tmp_path / "r", EvalConfig(horizons=(1, 12)), progress=False)
    with pytest.raises(InputError, match="horizons"):
        EvalConfig(horizons=(0,))
    assert not (tmp_path / "r").exists()


def test_cli_eval(planning_run, heldout_32, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["eval", "--run", str(planning_run), "--data", str(heldout_32), "--out", str(out), "--horizons", "1", "4",
                 "--maskgit-steps", "2", "--no-fvd", "--gifs", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "index.html" in printed and "Delta_4 PSNR" in printed and "adapter: command -> latent" in printed and "skipped fvd" in printed
    assert "note: " in printed and "downscaled to the model's 16x16" in printed
    assert main(["eval", "--run", str(tmp_path / "nope"), "--data", str(heldout_32), "--out", str(out)]) == 2


def test_several_stores_are_reported_per_domain_with_game_actions_as_classes(planning_run, heldout_32, tmp_path, capsys):
    coinrun = tmp_path / "coinrun.h5"
    assert main(["data", "platformer", "--game", "coinrun", "--episodes", "2", "--steps", "6", "--size", "16",
                 "--out", str(coinrun)]) == 0
    out = tmp_path / "domains"
    assert main(["eval", "--run", str(planning_run), "--data", str(heldout_32), str(coinrun), "--out", str(out),
                 "--horizons", "1", "4", "--maskgit-steps", "2", "--no-fvd", "--gifs", "0"]) == 0
    printed = capsys.readouterr().out
    assert "[heldout] Delta_4 PSNR" in printed and "[coinrun] latent actions: NMI" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    arm, game = metrics["domains"]["heldout"], metrics["domains"]["coinrun"]
    assert arm["latent_actions"]["labels"][:3] == ["stay", "+x", "-x"] and "physics" in arm
    labels = game["latent_actions"]["labels"]
    assert "LEFT" in labels and len(labels) == 15 and len(game["latent_actions"]["confusion"][0]) == 15
    assert sum(map(sum, game["latent_actions"]["confusion"])) == 2 * 5
    assert "arm commands" not in game["skipped"]["adapter"] and "record" in game["skipped"]["adapter"]
    assert "masks" in game["skipped"]["physics"]
    for usage in metrics["code_usage"].values():
        assert len(usage) == 8 and sum(usage) == pytest.approx(1, abs=1e-3)
    for name in ("heldout/index.html", "coinrun/index.html", "coinrun/confusion.png", "code_usage.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "coinrun" / "latent_action_arrows.png").exists()  # no arm state in a game
    page = (out / "index.html").read_text()
    assert "Latent codes across domains" in page and 'href="coinrun/index.html"' in page
    assert not re.search(r"\d\.\d{4,}", page)


def test_a_bad_second_domain_is_refused_before_any_work(tiny_run, heldout_32, make_store, tmp_path):
    with pytest.raises(StoreError, match="small.h5: frames are 8x8"):
        evaluate(Run.load(tiny_run), [heldout_32, make_store("small.h5", lengths=(20,), size=8)], tmp_path / "r",
                 EvalConfig(horizons=(1, 4)), progress=False)
    assert not (tmp_path / "r").exists()


def test_one_step_interaction_is_scored_on_every_transition_where_an_object_moves(tiny_run, tmp_path):
    """A red square pushed 1 px a frame across 16 px frames: the true next frame shows all of
    its motion; the untrained model's frames are scored beside it, each row named."""
    masks = np.zeros((12, 16, 16), np.uint8)
    masks[:, 0:3] = 1  # the arm along the top
    for t in range(12):
        masks[t, 8:12, 1 + t : 5 + t] = 2
    colours = {o.mask_id: [int(255 * c) for c in o.rgba[:3]] for o in OBJECTS}
    frames = np.full((12, 16, 16, 3), 120, np.uint8)
    for mask_id, colour in colours.items():
        frames[masks == mask_id] = colour
    path = tmp_path / "push.h5"
    with EpisodeWriter(path) as writer:
        writer.append(frames, actions=np.zeros((11, 4), np.float32), action_names=["vx", "vy", "vz", "grip"],
                      masks=masks, source="test", fps=5)
    metrics = evaluate(Run.load(tiny_run), path, tmp_path / "r", EvalConfig(horizons=(1, 4), **FAST), progress=False)
    interaction = metrics["interaction"]
    assert interaction["moves"] == 11 - 2 and interaction["true_travel_px"] == pytest.approx(9.0)  # t >= 2: context
    assert set(interaction["share_shown"]) == {"truth", "reconstruction", "lam", "random"}
    assert interaction["lag_fit"]["moves"] == 9  # every scored move has a previous step
    assert interaction["share_shown"]["truth"] == pytest.approx(1.0)
    # The push picture: the first 4-step window after the context (every window travels 4 px).
    push = interaction["push"]
    assert (push["t"], push["steps"], push["object"], push["true_travel_px"]) == (2, 4, "red_cube", pytest.approx(4.0))
    assert set(push["shown"]) == {"truth", "lam", "random"} and push["shown"]["truth"] == pytest.approx(1.0)
    assert (tmp_path / "r" / push["picture"]).stat().st_size > 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Predicted interactions, one step ahead" in page and 'src="push.png"' in page
