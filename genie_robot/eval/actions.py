"""Latent actions vs the true actions, on episodes that recorded them.

Each transition t -> t+1 of an episode has: the latent action the LAM reads from the video,
the action that produced it (store `actions`), its discrete label, and for the arm the
end-effector and gripper change (store `state`). Labels: for the arm's commands their
behaviour (`behaviour_of`: dominant command axis, or "stay"); for one-hot game actions
(ALE, Procgen) the action itself. Other continuous actions (e.g. RT-1's) have no label here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genie_robot.errors import InputError
from genie_robot.models.adapter import ActionAdapter
from genie_robot.sim.controllers import BEHAVIOURS, behaviour_of
from genie_robot.sim.world import COMMAND_NAMES


@dataclass
class Transitions:
    """Paired per-transition arrays of many episodes (N transitions in all)."""

    latents: np.ndarray        # int [N]
    commands: np.ndarray       # float [N, C]
    command_names: list
    labels: np.ndarray         # int [N], index into label_names
    label_names: tuple
    ee_delta: np.ndarray       # float [N, 3] metres, or [N, 0] when the store has no ee_pos
    gripper_delta: np.ndarray  # float [N], NaN when the store has no gripper state
    episode: np.ndarray        # int [N], position of its episode in the list given

    def subset(self, keep: np.ndarray) -> Transitions:
        return Transitions(self.latents[keep], self.commands[keep], self.command_names, self.labels[keep],
                           self.label_names, self.ee_delta[keep], self.gripper_delta[keep], self.episode[keep])


def action_labels(actions: np.ndarray, names) -> tuple[np.ndarray, tuple] | None:
    """Discrete labels of true actions [N, C] and their names, or None when they have none
    (continuous actions other than the arm's commands)."""
    actions = np.asarray(actions, np.float32)
    if list(names) == list(COMMAND_NAMES):
        return behaviour_of(actions), BEHAVIOURS
    if len(actions) and np.isin(actions, (0, 1)).all() and (actions.sum(1) == 1).all():
        return actions.argmax(1), tuple(names)
    return None


def collect_transitions(wm, episodes) -> Transitions:
    """Latent actions (inferred by the world model's LAM) beside commands and state changes for
    every transition of `episodes` (store Episode objects that have actions). The actions are
    read and checked first, so a store whose actions cannot be labelled costs no LAM pass."""
    if not episodes:
        raise InputError("no episodes to collect transitions from")
    names = {tuple(e.action_names) if e.action_names else None for e in episodes}
    if None in names:
        raise InputError("some episodes have no actions; latent actions can only be compared with true actions on "
                         "episodes that recorded them")
    if len(names) > 1:
        raise InputError(f"the episodes record actions of different layouts ({sorted(names)})")
    names = list(names.pop())
    commands = [np.asarray(e.read_actions(), np.float32) for e in episodes]
    labelled = action_labels(np.concatenate(commands), names)
    if labelled is None:
        raise InputError(f"actions {names} are neither the arm's commands nor one-hot game actions, so there are no "
                         "true action classes to compare latent actions with")
    parts = []
    for position, (episode, episode_commands) in enumerate(zip(episodes, commands)):
        keys, steps = episode.state_keys, len(episode_commands)
        ee = np.diff(episode.read_state("ee_pos"), axis=0) if "ee_pos" in keys else np.zeros((steps, 0))
        grip = np.diff(episode.read_state("gripper")[:, 0]) if "gripper" in keys else np.full(steps, np.nan)
        latents = wm.infer_actions(episode.read_frames())
        parts.append((latents, ee, grip, np.full(len(latents), position)))
    latents, ee, grip, episode_ids = (np.concatenate(column) for column in zip(*parts))
    return Transitions(latents, np.concatenate(commands), names, *labelled, ee, grip, episode_ids)


def per_code_effects(t: Transitions, num_actions: int) -> list[dict]:
    """For each latent action: how often it is used, the true action class it most often stands
    for (and that class's share of its transitions), and, where the store has the arm's state,
    the mean end-effector displacement and gripper change."""
    table = []
    for code in range(num_actions):
        picked = t.latents == code
        row = {"code": code, "count": int(picked.sum()), "usage": float(picked.mean())}
        if picked.any():
            counts = np.bincount(t.labels[picked], minlength=len(t.label_names))
            row["top_behaviour"] = t.label_names[counts.argmax()]
            row["top_share"] = float(counts.max() / counts.sum())
            if t.ee_delta.shape[1]:
                row["mean_ee_delta_mm"] = (t.ee_delta[picked].mean(0) * 1000).round(3).tolist()
            row["mean_gripper_delta"] = float(np.nanmean(t.gripper_delta[picked])) if np.isfinite(t.gripper_delta[picked]).any() else None
        table.append(row)
    return table


def displacement_explained(t: Transitions, num_actions: int) -> list[float] | None:
    """Share of the hand's motion variance per axis (x, y, z) that the latent code accounts for:
    R^2 of predicting each transition's end-effector displacement by its code's mean (the
    correlation ratio). Unlike NMI it needs no labels, so the controllers' noisy commands do not
    cap it: 1 when codes fix the displacement, ~0 when they say nothing about it. None without
    the arm's state."""
    if not t.ee_delta.shape[1] or len(t.latents) < 2:
        return None
    counts = np.bincount(t.latents, minlength=num_actions)[:, None]
    sums = np.zeros((num_actions, t.ee_delta.shape[1]))
    np.add.at(sums, t.latents, t.ee_delta)
    residual = t.ee_delta - (sums / np.maximum(counts, 1))[t.latents]
    total = ((t.ee_delta - t.ee_delta.mean(0)) ** 2).sum(0)
    # In-sample code means never do worse than the overall mean: >= 0 up to rounding.
    return [max(0.0, float(1 - r / v)) if v > 0 else 0.0 for r, v in zip((residual**2).sum(0), total)]


def confusion(latents, labels, num_actions: int, num_labels: int = len(BEHAVIOURS)) -> np.ndarray:
    """Counts [num_actions, num_labels]: row = latent action, column = true action class."""
    table = np.zeros((num_actions, num_labels), np.int64)
    np.add.at(table, (np.asarray(latents), np.asarray(labels)), 1)
    return table


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def normalized_mutual_information(table: np.ndarray) -> float:
    """NMI of a contingency table: I(A; B) / mean(H(A), H(B)) (the arithmetic normalisation,
    scikit-learn's default). 1 when both labelings are identical up to renaming, 0 when
    independent or when either is constant; 1 by convention when both are constant."""
    joint = table / table.sum()
    h_a, h_b = _entropy(joint.sum(1)), _entropy(joint.sum(0))
    if h_a == 0 and h_b == 0:
        return 1.0
    mutual = h_a + h_b - _entropy(joint.ravel())
    return float(max(mutual, 0.0) / ((h_a + h_b) / 2))


def adapter_accuracy(adapter: ActionAdapter, t: Transitions) -> dict:
    """Both directions on held-out transitions, each beside its majority-class baseline:
    command -> latent (does the adapter pick the LAM's latent action?) and
    latent -> command (does the latent's command have the true behaviour?)."""
    behaviours = t.labels
    to_latent = adapter.to_latent(t.commands) == t.latents
    back = behaviour_of(adapter.to_commands(t.latents)) == behaviours
    majority = lambda labels: float(np.bincount(labels).max() / len(labels))
    return {"command_to_latent": float(to_latent.mean()), "command_to_latent_majority": majority(t.latents),
            "latent_to_behaviour": float(back.mean()), "latent_to_behaviour_majority": majority(behaviours),
            "transitions": int(len(t.latents))}
