import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from genie_robot.data import EpisodeWriter, StoreError
from genie_robot.errors import CheckpointError, ConfigError, TrainingDiverged
from genie_robot.models import DynamicsConfig, LatentActionConfig, TokenizerConfig
from genie_robot.models.checkpoint import load_model, load_tensors
from genie_robot.train.trainer import BUDGET_SKIP, BUDGET_TIMED, TrainConfig, Trainer, ema_decay_at, fit_steps_to_budget, lr_at


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Moving squares: enough structure for every stage, made in milliseconds."""
    path = tmp_path_factory.mktemp("data") / "squares.h5"
    rng = np.random.default_rng(0)
    with EpisodeWriter(path) as w:
        for _ in range(4):
            frames = np.zeros((12, 16, 16, 3), np.uint8)
            x, y = rng.integers(0, 12, 2)
            for t in range(12):
                frames[t, y : y + 4, x : x + 4] = (255, 80, 40)
                x, y = np.clip([x + rng.integers(-1, 2), y + rng.integers(-1, 2)], 0, 12)
            w.append(frames)
    return path


def tiny(stage):
    return {"tokenizer": TokenizerConfig, "lam": LatentActionConfig, "dynamics": DynamicsConfig}[stage].preset("tiny")


def cfg(**kw):
    base = dict(steps=6, batch_size=2, clip_len=4, lr=1e-3, warmup=2, ckpt_every=3, sample_every=3, log_every=1)
    return TrainConfig(**{**base, **kw})


def test_ema_decay_forgets_the_initialization_fast_then_holds():
    c = TrainConfig(ema=0.999)
    assert ema_decay_at(0, c) == pytest.approx(0.1) and ema_decay_at(90, c) == pytest.approx(0.91)
    assert ema_decay_at(20_000, c) == 0.999


def test_lr_schedule():
    c = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(100, c) == pytest.approx(0.1) and 0.1 < lr_at(50, c) < 1.0


def test_a_time_budget_lowers_the_steps_to_what_fits():
    c = TrainConfig(steps=1000, minutes=1.0)
    assert fit_steps_to_budget(30, c, seconds_left=50.0, steps_per_second=4.0) == 30 + 190  # 5% kept for checkpoints
    assert fit_steps_to_budget(30, c, seconds_left=1e4, steps_per_second=4.0) == 1000  # never above --steps
    assert fit_steps_to_budget(30, c, seconds_left=-5.0, steps_per_second=4.0) == 30  # past the budget: stop here
    with pytest.raises(ConfigError, match="minutes"):
        TrainConfig(minutes=-1.0)


def test_a_spent_time_budget_stops_at_the_next_log_step_and_saves(store, tmp_path):
    config = cfg(steps=500, minutes=1e-6, ckpt_every=1000, log_every=4)
    trainer = Trainer("lam", tiny("lam"), [store], tmp_path, config, progress=False)
    trainer.train()
    assert trainer.step == trainer.cfg.steps == 4  # before the steps could be timed
    state = json.loads((tmp_path / "lam" / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["train_config"]["steps"] == 4


def test_a_time_budget_that_holds_every_step_changes_nothing(store, tmp_path):
    trainer = Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=BUDGET_SKIP + BUDGET_TIMED + 10, minutes=60.0), progress=False)
    trainer.train()
    assert trainer.step == trainer.cfg.steps == BUDGET_SKIP + BUDGET_TIMED + 10


def test_all_three_stages_train_and_write_logs(store, tmp_path):
    for stage in ("tokenizer", "lam", "dynamics"):
        Trainer(stage, tiny(stage), [store], tmp_path, cfg(), progress=False).train()
        assert (tmp_path / stage / "model.safetensors").exists()
        logs = tmp_path / "logs" / stage
        assert (logs / "metrics.csv").read_text().count("\n") == 7  # header + 6 steps
        assert sorted(p.name for p in (logs / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
        assert any((logs / "tensorboard").iterdir())
    assert load_model(tmp_path / "dynamics", "dynamics").config == tiny("dynamics")


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_matches_uninterrupted_run(store, tmp_path, ema):
    Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path / "a", cfg(ema=ema), progress=False).train()
    # Interrupt after step 3: train a copy configured to stop there, then resume to 6.
    first = Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path / "c", cfg(ema=ema), progress=False)
    first.cfg.steps = 3
    first.train()
    resumed = Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path / "c", cfg(ema=ema), resume=True, progress=False)
    assert resumed.step == 3
    resumed.train()
    files = ["model.safetensors"] + ["training_weights.safetensors"] * bool(ema)
    for name in files:
        a, c = (load_tensors(tmp_path / run / "tokenizer" / name) for run in "ac")
        for key in a:
            assert torch.equal(a[key], c[key]), (name, key)
    assert (tmp_path / "a" / "tokenizer" / "training_weights.safetensors").exists() == bool(ema)


def test_ema_checkpoint_holds_the_average_and_resume_must_agree_on_it(store, tmp_path):
    config = cfg(ema=0.5, steps=4)
    trainer = Trainer("lam", tiny("lam"), [store], tmp_path, config, progress=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    trained = load_tensors(tmp_path / "lam" / "training_weights.safetensors")
    average = load_model(tmp_path / "lam", "lam").state_dict()
    key = next(k for k, v in start.items() if v.is_floating_point() and v.ndim == 2)
    assert torch.equal(trained[key], trainer.model.state_dict()[key])
    assert not torch.equal(average[key], trained[key]) and not torch.equal(average[key], start[key])
    with pytest.raises(CheckpointError, match="saved with a weight average"):
        Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=6), resume=True, progress=False)
    Trainer("lam", tiny("lam"), [store], tmp_path / "plain", cfg(steps=2), progress=False).train()
    with pytest.raises(CheckpointError, match="saved without a weight average"):
        Trainer("lam", tiny("lam"), [store], tmp_path / "plain", cfg(steps=4, ema=0.9), resume=True, progress=False)
    with pytest.raises(ConfigError, match="ema must be in"):
        cfg(ema=1.0)


def test_resume_past_the_last_step_trains_nothing(store, tmp_path):
    Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=3), progress=False).train()
    again = Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=2), resume=True, progress=False)
    assert again.step == 3 and again.train() == {}


def test_dynamics_reads_cached_tokens_and_latents_equal_to_encoding_each_batch(store, tmp_path):
    """Per-frame tokenizer and per-transition LAM: the dataset is read once, and every batch's
    tokens and latent actions are exactly what the frozen models give for its frames (frame
    skip included for tokens; latents are cached only without a skip, where a transition is
    two neighbouring frames)."""
    for stage in ("tokenizer", "lam"):
        Trainer(stage, tiny(stage), [store], tmp_path, cfg(steps=1, clip_len=2), progress=False).train()
    trainer = Trainer("dynamics", tiny("dynamics"), [store], tmp_path, cfg(frame_skip=2), progress=False)
    assert set(trainer.frozen_outputs) == {"tokens"} and len(trainer.frozen_outputs["tokens"][0]) == 4
    batch = next(iter(trainer._loader()))
    prepared = trainer._prepare(batch)
    assert torch.equal(prepared["tokens"], trainer.frozen["tokenizer"].encode(batch["video"]))
    assert prepared["tokens"].shape == (2, 4, 4, 4)
    trainer = Trainer("dynamics", tiny("dynamics"), [store], tmp_path, cfg(clip_len=8), progress=False)
    assert set(trainer.frozen_outputs) == {"tokens", "latents"}
    batch = next(iter(trainer._loader()))
    prepared = trainer._prepare(batch)
    assert torch.equal(prepared["actions"], trainer.frozen["lam"].infer_actions(batch["video"]))
    assert prepared["actions"].shape == (2, 7)


def test_change_dynamics_reads_each_clip_once_within_its_memo(change_run, mujoco_store, tmp_path):
    """The change tokenizer's reading of a clip (a rollout of its decoder) is made the first time
    the clip is drawn and reused after: the same as reading it again, and the memo stops growing
    at memo_gb while later batches are still read whole."""
    from genie_robot.models.change_dynamics import ChangeDynamicsConfig

    for kind in ("lam", "change_tokenizer"):
        (tmp_path / kind).symlink_to(change_run / kind)
    config = ChangeDynamicsConfig.preset("tiny")
    trainer = Trainer("change_dynamics", config, [mujoco_store], tmp_path, cfg(clip_len=4, batch_size=4, precision="fp32"), progress=False)
    batches = iter(trainer._loader())
    for _ in range(3):
        batch = next(batches)
        prepared = trainer._prepare(dict(batch))
        direct = trainer._training_inputs(trainer._with_frozen_outputs(dict(batch)))
        assert direct.keys() == prepared.keys() and all(torch.equal(direct[k], prepared[k]) for k in direct)
    drawn = len(trainer.input_memo)
    assert 0 < drawn <= 12 and trainer.input_memo_bytes == sum(
        v.nelement() * v.element_size() for row in trainer.input_memo.values() for v in row.values())
    one_clip = trainer.input_memo_bytes / drawn
    small = Trainer("change_dynamics", config, [mujoco_store], tmp_path, cfg(clip_len=4, batch_size=4, precision="fp32",
                                                                           memo_gb=1.5 * one_clip / 2**30), progress=False)
    batch = next(iter(small._loader()))
    prepared = small._prepare(dict(batch))
    assert len(small.input_memo) == 1 and prepared["frames"].shape[0] == 4
    assert small._prepare(dict(batch))["changes"].equal(prepared["changes"])


def test_compiled_dynamics_trains_like_eager_and_saves_plain_checkpoints(store, tmp_path):
    """torch.compile on the transformer: the same parameters after a few fp32 steps (up to
    fused-kernel rounding) and checkpoint keys without compile's wrapper."""
    for stage in ("tokenizer", "lam"):
        Trainer(stage, tiny(stage), [store], tmp_path / "base", cfg(steps=1, clip_len=2), progress=False).train()
    params = {}
    for compiled in (False, True):
        run = shutil.copytree(tmp_path / "base", tmp_path / f"compiled_{compiled}")
        trainer = Trainer("dynamics", tiny("dynamics"), [store], run, cfg(steps=3, compile=compiled, precision="fp32"), progress=False)
        assert trainer.compiled == compiled
        trainer.train()
        params[compiled] = load_model(run / "dynamics", "dynamics").state_dict()
    assert params[True].keys() == params[False].keys()
    for name, eager in params[False].items():
        torch.testing.assert_close(params[True][name], eager, atol=2e-4, rtol=1e-3, msg=name)


def test_compile_without_a_cxx_compiler_trains_eagerly(monkeypatch):
    from genie_robot.models.dynamics import DynamicsModel
    from genie_robot.train.trainer import compile_transformers

    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = DynamicsModel(tiny("dynamics"))
    with pytest.warns(UserWarning, match="needs a C.. compiler.*install g.."):
        assert not compile_transformers(model, torch.device("cpu"))
    assert model.transformer._compiled_call_impl is None


def test_single_frame_clips_train_a_per_frame_tokenizer(store, tmp_path):
    Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path, cfg(clip_len=1), progress=False).train()
    assert (tmp_path / "logs" / "tokenizer" / "samples" / "step_0000006.png").exists()


def test_refuses_to_overwrite_and_checks_resume_config(store, tmp_path):
    Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=2), progress=False).train()
    with pytest.raises(CheckpointError, match="pass --resume"):
        Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=2), progress=False)
    with pytest.raises(CheckpointError, match="num_actions: checkpoint 8 vs requested 4"):
        Trainer("lam", LatentActionConfig.preset("tiny", num_actions=4), [store], tmp_path, cfg(), resume=True)


def test_dynamics_needs_matching_tokenizer_and_lam(store, tmp_path):
    with pytest.raises(CheckpointError, match="needs a trained tokenizer"):
        Trainer("dynamics", tiny("dynamics"), [store], tmp_path, cfg())
    Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path, cfg(steps=1), progress=False).train()
    Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=1), progress=False).train()
    with pytest.raises(ConfigError, match="dynamics codebook_size is 32 but the run.s tokenizer has 64"):
        Trainer("dynamics", DynamicsConfig.preset("tiny", codebook_size=32), [store], tmp_path, cfg())


def test_lam_num_actions_from_the_cli_and_the_dynamics_follows_it(store, tmp_path, capsys):
    from genie_robot.cli import main

    def train(stage, *extra):
        return main(["train", stage, "--data", str(store), "--preset", "tiny", "--out", str(tmp_path), "--steps", "1",
                     "--batch-size", "2", "--clip-len", "4", "--sample-every", "0", "--no-compile", *extra])

    assert train("tokenizer") == 0 and train("lam", "--num-actions", "16") == 0
    assert train("dynamics", "--num-actions", "16") == 2
    assert "the dynamics takes its count from the run's LAM" in capsys.readouterr().err
    assert train("dynamics") == 0
    assert DynamicsConfig.load(tmp_path / "dynamics" / "config.json").num_actions == 16


def test_lam_command_weight_reads_the_stores_commands(mujoco_store, make_store, tmp_path, capsys):
    """`train lam --command-weight`: the command's length comes from the stores, the fit is logged,
    and stores without commands (or another stage) are refused with the fix."""
    from genie_robot.cli import main

    def train(stage, data, out, *extra):
        return main(["train", stage, "--data", str(data), "--preset", "tiny", "--out", str(out), "--steps", "2",
                     "--batch-size", "2", "--clip-len", "2", "--sample-every", "0", *extra])

    assert train("lam", mujoco_store, tmp_path / "run", "--command-weight", "1") == 0
    config = LatentActionConfig.load(tmp_path / "run" / "lam" / "config.json")
    assert (config.command_weight, config.command_dim) == (1.0, 4)
    assert "command_r2" in (tmp_path / "run" / "logs" / "lam" / "metrics.csv").read_text().splitlines()[0]
    silent = make_store("no_commands.h5", lengths=(10,), size=16, with_actions=False)
    assert train("lam", silent, tmp_path / "silent", "--command-weight", "1") == 2
    assert "recorded robot commands" in capsys.readouterr().err
    assert train("tokenizer", mujoco_store, tmp_path / "tok", "--command-weight", "1") == 2
    assert "pass it to `genie-robot train lam`" in capsys.readouterr().err


def test_frames_smaller_than_model_are_refused(store, tmp_path):
    with pytest.raises(StoreError, match="smaller than the model.s 64x64"):
        Trainer("tokenizer", TokenizerConfig.preset("small"), [store], tmp_path, cfg())


def test_nan_loss_stops_and_keeps_last_good_checkpoint(store, tmp_path):
    trainer = Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path, cfg(steps=6, ckpt_every=2), progress=False)
    trainer.cfg.steps = 2
    trainer.train()
    trainer.cfg.steps = 6
    with torch.no_grad():
        trainer.model.to_pixels.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.train()
    kept = load_model(tmp_path / "tokenizer")
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    assert Trainer("tokenizer", tiny("tokenizer"), [store], tmp_path, cfg(), resume=True).step == 2


def test_interrupted_checkpoint_swap_recovers(store, tmp_path):
    Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=2), progress=False).train()
    (tmp_path / "lam").rename(tmp_path / ".lam.old")  # died between the two renames
    assert Trainer("lam", tiny("lam"), [store], tmp_path, cfg(steps=3), resume=True).step == 2


def test_two_process_ddp_on_cpu(store, tmp_path):
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "genie_robot.cli", "train", "tokenizer",
         "--data", str(store), "--preset", "tiny", "--steps", "30", "--batch-size", "2", "--clip-len", "4",
         "--out", str(tmp_path), "--ckpt-every", "30", "--sample-every", "0", "--minutes", "30"],  # ranks agree on the budget
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = (tmp_path / "tokenizer" / "trainer_state.json").read_text()
    assert '"world_size": 2' in state and '"step": 30' in state


def test_recipe_defaults_per_preset_and_stage():
    from genie_robot.train.recipe import DEFAULT, recipe

    assert recipe("small", "tokenizer")["clip_len"] == 1 and recipe("small", "lam")["clip_len"] == 2
    assert recipe("small", "dynamics")["clip_len"] == 16
    assert recipe("paper", "dynamics") == DEFAULT


def test_adapter_is_the_fourth_stage_with_metrics_and_resume(tiny_run, mujoco_store, make_store, tmp_path, capsys):
    """`genie-robot train adapter` on MuJoCo episodes at 32 px for the tiny run's 16 px LAM."""
    from genie_robot.cli import main
    from genie_robot.models.run import Run

    run = tmp_path / "run"
    run.mkdir()
    for kind in ("tokenizer", "lam", "dynamics"):
        (run / kind).symlink_to(tiny_run / kind)
    args = ["train", "adapter", "--data", str(mujoco_store), "--preset", "tiny", "--out", str(run),
            "--batch-size", "2", "--clip-len", "4", "--ckpt-every", "2"]
    assert main(args + ["--steps", "4"]) == 0
    assert "adapter: step 4" in capsys.readouterr().out
    header = (run / "logs" / "adapter" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "accuracy", "lr", "grad_norm"} <= set(header)
    assert main(args + ["--steps", "6", "--resume"]) == 0
    adapter = Run.load(run).adapter
    assert adapter.config.command_names == ["ee_vx", "ee_vy", "ee_vz", "gripper"]
    assert adapter.config.num_actions == Run.load(run).lam.config.num_actions
    assert adapter.latent_counts.sum() == 6 * 2 * 3  # every transition seen: steps x clips x (clip_len - 1)
    assert main(args + ["--steps", "6", "--resume"]) == 0 and "already at step 6" in capsys.readouterr().out
    # No LAM to read latent actions with, or no arm commands to learn from: one line naming the fix.
    assert main(["train", "adapter", "--data", str(mujoco_store), "--preset", "tiny", "--out", str(tmp_path / "empty")]) == 2
    assert "needs a trained lam" in capsys.readouterr().err
    silent = make_store("no_actions.h5", lengths=(10,), size=16, with_actions=False)
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "lam").symlink_to(tiny_run / "lam")
    assert main(["train", "adapter", "--data", str(silent), "--preset", "tiny", "--out", str(tmp_path / "r2")]) == 2
    assert "recorded arm commands" in capsys.readouterr().err


def test_probe_is_a_stage_trained_on_recorded_positions(tiny_run, mujoco_store, make_store, tmp_path, capsys):
    """`genie-robot train probe`: frames at the run's resolution against their recorded positions;
    it needs no other stage, resumes, and refuses stores without state."""
    from genie_robot.cli import main
    from genie_robot.models.run import Run

    run = tmp_path / "run"
    run.mkdir()
    (run / "tokenizer").symlink_to(tiny_run / "tokenizer")
    args = ["train", "probe", "--data", str(mujoco_store), "--preset", "tiny", "--out", str(run), "--batch-size", "4",
            "--ckpt-every", "2"]
    assert main(args + ["--steps", "4"]) == 0
    assert "probe: step 4" in capsys.readouterr().out
    header = (run / "logs" / "probe" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "error_cm", "lr", "grad_norm"} <= set(header)
    assert main(args + ["--steps", "6", "--resume"]) == 0
    probe = Run.load(run).probe
    assert probe.config.position_names == ["hand", "blue_cylinder", "red_cube", "soft_cube"]
    read = probe.predict(np.zeros((2, 32, 32, 3), np.uint8))  # the store's 32 px, resized to the run's 16
    assert list(read) == probe.config.position_names and read["hand"].shape == (2, 3)
    stateless = make_store("stateless.h5", lengths=(10,), size=16)
    assert main(["train", "probe", "--data", str(stateless), "--preset", "tiny", "--out", str(tmp_path / "r2")]) == 2
    assert "recorded positions differ" in capsys.readouterr().err
    # A probe at another resolution than the run's tokenizer does not load with it.
    from genie_robot.models import ProbeConfig, StateProbe
    from genie_robot.models.checkpoint import save_model

    save_model(StateProbe(ProbeConfig.preset("tiny", image_size=32, position_names=["hand"])), run / "probe")
    with pytest.raises(ConfigError, match="probe image_size is 32 but the run's tokenizer has 16"):
        Run.load(run)
