"""Latent actions vs arm behaviours: NMI and confusion on known cases, the adapter both ways."""
import numpy as np
import pytest

from genie_robot.errors import InputError
from genie_robot.eval.actions import (
    Transitions,
    action_labels,
    adapter_accuracy,
    confusion,
    displacement_explained,
    normalized_mutual_information,
    per_code_effects,
)
from genie_robot.models.adapter import fit_adapter
from genie_robot.models.checkpoint import save_model
from genie_robot.models.run import Run
from genie_robot.sim.controllers import BEHAVIOURS, behaviour_command

NAMES = ["ee_vx", "ee_vy", "ee_vz", "gripper"]


def test_nmi_known_cases():
    labels = np.array([0, 0, 1, 1, 2, 2])
    renamed = np.array([5, 5, 3, 3, 4, 4])
    assert normalized_mutual_information(confusion(labels, renamed, 3, 6)) == pytest.approx(1.0)
    # Independent: every latent code sees every behaviour equally often.
    assert normalized_mutual_information(np.full((3, 4), 7)) == pytest.approx(0.0, abs=1e-12)
    # One code for everything (a collapsed LAM) carries no information.
    assert normalized_mutual_information(confusion(np.zeros(6, int), labels, 2, 3)) == 0.0
    # By hand: table [[2, 0], [1, 1]] -> I = 0.2158 nats, H(A) = 0.6931, H(B) = 0.5623.
    table = np.array([[2, 0], [1, 1]])
    p = table / 4
    h = lambda q: -(q[q > 0] * np.log(q[q > 0])).sum()
    mi = h(p.sum(1)) + h(p.sum(0)) - h(p.ravel())
    assert normalized_mutual_information(table) == pytest.approx(mi / ((h(p.sum(1)) + h(p.sum(0))) / 2))
    assert mi == pytest.approx(0.2158, abs=1e-4)


def _transitions(n=240, seed=0, episodes=6):
    """Commands of known behaviours; the 'LAM' gives behaviour b the code b % 8 (so 'close'
    shares code 0 with 'stay'), and moves the end effector by the command."""
    rng = np.random.default_rng(seed)
    behaviours = rng.integers(0, len(BEHAVIOURS), n)
    commands = np.stack([behaviour_command(b) for b in behaviours]) * rng.uniform(0.6, 1.0, (n, 1))
    ee_delta = commands[:, :3] * 0.01
    labels, label_names = action_labels(commands, NAMES)
    np.testing.assert_array_equal(labels, behaviours)
    return Transitions(behaviours % 8, commands.astype(np.float32), NAMES, labels, label_names, ee_delta,
                       commands[:, 3] * 0.1, np.repeat(np.arange(episodes), n // episodes))


def test_displacement_explained():
    t = _transitions()
    # Codes 1..6 each fix one signed axis; only the random 0.6-1.0 speed is left unexplained.
    explained = displacement_explained(t, 8)
    assert len(explained) == 3 and all(0.9 < v < 1.0 for v in explained)
    shuffled = t.subset(np.arange(len(t.latents)))
    shuffled.latents = np.random.default_rng(1).permutation(t.latents)
    assert all(0 <= v < 0.1 for v in displacement_explained(shuffled, 8))
    no_state = Transitions(t.latents, t.commands, NAMES, t.labels, t.label_names, np.zeros((len(t.latents), 0)),
                           t.gripper_delta, t.episode)
    assert displacement_explained(no_state, 8) is None


def test_per_code_effects_and_confusion():
    t = _transitions()
    table = confusion(t.latents, t.labels, 8)
    assert table.sum() == len(t.latents) and table.shape == (8, len(BEHAVIOURS))
    assert table[0, 0] + table[0, 8] == (t.latents == 0).sum()
    rows = per_code_effects(t, 8)
    plus_x = rows[1]  # code 1 = behaviour "+x"
    assert plus_x["top_behaviour"] == "+x" and plus_x["mean_ee_delta_mm"][0] > 5
    assert abs(plus_x["mean_ee_delta_mm"][1]) < 1e-6
    assert sum(r["usage"] for r in rows) == pytest.approx(1.0)
    assert normalized_mutual_information(table) > 0.9


def test_game_actions_are_labelled_by_the_action_and_other_continuous_actions_not_at_all():
    names = ["NOOP", "LEFT", "RIGHT"]
    one_hot = np.eye(3, dtype=np.float32)[[2, 0, 1, 1]]
    labels, label_names = action_labels(one_hot, names)
    assert labels.tolist() == [2, 0, 1, 1] and label_names == tuple(names)
    assert action_labels(one_hot * 0.5, names) is None  # averaged under frame skip: frequencies, not one action
    assert action_labels(np.zeros((4, 7)), [f"joint_{i}" for i in range(7)]) is None


def test_adapter_learns_both_directions_and_round_trips(tmp_path):
    t = _transitions()
    fit, held = t.subset(t.episode < 3), t.subset(t.episode >= 3)
    adapter = fit_adapter(fit.commands, fit.latents, NAMES, num_actions=8)
    scores = adapter_accuracy(adapter, held)
    assert scores["command_to_latent"] == 1.0 > scores["command_to_latent_majority"]
    # Code 0 stands for both "stay" and "close": its mean command is ambiguous, the rest are exact.
    assert scores["latent_to_behaviour"] > 0.8
    assert adapter.to_latent([1.0, 0, 0, 0]).tolist() == [1]
    # Code 3 ("+y" at 0.6-1.0 of full speed): its mean is ~0.8, executed at full strength.
    np.testing.assert_allclose(adapter.latent_commands[3].numpy(), [0, 0.8, 0, 0], atol=0.05)
    np.testing.assert_allclose(adapter.to_commands([3])[0], [0, 1, 0, 0], atol=1e-6)
    save_model(adapter, tmp_path / "adapter")
    loaded = Run.load(tmp_path).adapter
    np.testing.assert_array_equal(loaded.to_latent(held.commands), adapter.to_latent(held.commands))


def test_commands_of_latent_actions_move_at_full_strength_in_the_mean_direction():
    # Code 1: +x at full speed half the time, still the other half, gripper closed; code 2 barely moves.
    commands = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [0.1, 0.1, 0, -1], [0.1, 0.1, 0, -1]], np.float32)
    adapter = fit_adapter(commands, np.array([1, 1, 2, 2]), NAMES, num_actions=4, steps=1)
    np.testing.assert_allclose(adapter.latent_commands[1].numpy(), [0.5, 0, 0, 1])
    np.testing.assert_allclose(adapter.to_commands([1, 2, 0]), [[1, 0, 0, 1], [0.1, 0.1, 0, -1], [0, 0, 0, 0]], atol=1e-6)


def test_adapter_rejects_bad_commands_and_latents(tmp_path):
    t = _transitions()
    adapter = fit_adapter(t.commands, t.latents, NAMES, num_actions=8, steps=10)
    with pytest.raises(InputError, match="4 values"):
        adapter.to_latent([0.1, 0.2])
    with pytest.raises(InputError, match="NaN"):
        adapter.to_latent([np.nan, 0, 0, 0])
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        adapter.to_latent([3.0, 0, 0, 0])
    with pytest.raises(InputError, match="out of range"):
        adapter.to_commands([8])
    with pytest.raises(InputError, match="as many latent actions"):
        fit_adapter(t.commands, t.latents[:-1], NAMES, num_actions=8)
    from genie_robot.errors import CheckpointError
    with pytest.raises(CheckpointError, match="needs a trained adapter.*genie-robot train adapter"):
        Run.load(tmp_path).require("adapter", "planning arm commands")
