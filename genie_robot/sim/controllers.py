"""Controllers that produce arm commands (vx, vy, vz, grip) in [-1, 1] for ArmWorld.

Discrete behaviours are the small action vocabulary that latent actions are compared
against; `behaviour_of` maps any continuous command back onto it.
"""
from __future__ import annotations

import numpy as np

from genie_robot.errors import InputError
from genie_robot.sim.scene import MOVABLE_OBJECTS
from genie_robot.sim.world import ArmWorld

BEHAVIOURS = ("stay", "+x", "-x", "+y", "-y", "+z", "-z", "open", "close")
_BEHAVIOUR_COMMANDS = np.array(
    [
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [-1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, -1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, -1, 0],
        [0, 0, 0, -1],
        [0, 0, 0, 1],
    ],
    dtype=np.float32,
)


def behaviour_command(index: int) -> np.ndarray:
    if not 0 <= index < len(BEHAVIOURS):
        raise InputError(f"behaviour index {index} out of range 0..{len(BEHAVIOURS) - 1} ({BEHAVIOURS})")
    return _BEHAVIOUR_COMMANDS[index].copy()


def behaviour_commands() -> np.ndarray:
    """float32 [9, 4]: the command of every behaviour, in BEHAVIOURS' order."""
    return _BEHAVIOUR_COMMANDS.copy()


def behaviour_of(commands: np.ndarray, deadband: float = 0.25) -> np.ndarray:
    """Nearest discrete behaviour of each command [..., 4]: its dominant motion axis; the
    gripper only when the hand does not move (pushes hold the hand closed while moving, and
    that is a push, not "close"); "stay" when nothing exceeds the deadband."""
    commands = np.asarray(commands, dtype=np.float32)
    motion, grip = commands[..., :3], commands[..., 3]
    axis = np.argmax(np.abs(motion), axis=-1)
    negative = np.take_along_axis(motion, axis[..., None], -1)[..., 0] < 0
    moving = np.abs(motion).max(axis=-1) >= deadband
    gripping = np.abs(grip) >= deadband
    index = np.where(moving, 1 + 2 * axis + negative, np.where(gripping, np.where(grip < 0, 7, 8), 0))
    return index.astype(np.int64)


class RandomExplorer:
    """Discrete behaviours held for a few frames (sticky random), as in play data."""

    def __init__(self, rng: np.random.Generator, hold=(2, 6)):
        self.rng, self.hold = rng, hold
        self._left, self._command = 0, behaviour_command(0)

    def __call__(self, world: ArmWorld) -> np.ndarray:
        if self._left == 0:
            self._command = behaviour_command(int(self.rng.integers(len(BEHAVIOURS))))
            self._left = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        self._left -= 1
        return self._command


class PushController:
    """Scripted pushes: close the hand, go above a point behind an object, descend to the
    table, push through the object along a random direction, lift. Repeats on new objects.
    Commands are proportional moves toward each waypoint, with a little noise so pushes vary."""

    APPROACH_HEIGHT = 0.12
    # The hand's site stops about 6 cm above the table, where the closed fingers touch it: aimed
    # lower, the hand stands pressing down until the segment ends and its -z commands do not
    # move it (benchmarks/motion_labels.py; docs/experiments/frame_rate_5hz.md).
    PUSH_HEIGHT = 0.065

    def __init__(self, rng: np.random.Generator, noise: float = 0.1):
        self.rng, self.noise = rng, noise
        self._waypoints: list[np.ndarray] = []

    def _plan(self, world: ArmWorld) -> None:
        positions = world.object_positions()
        target = MOVABLE_OBJECTS[int(self.rng.integers(len(MOVABLE_OBJECTS)))].name
        obj = positions[target]
        angle = self.rng.uniform(-np.pi, np.pi)
        direction = np.array([np.cos(angle), np.sin(angle), 0.0])
        start = obj - 0.09 * direction
        end = obj + self.rng.uniform(0.03, 0.1) * direction
        start = np.clip(start, world.ws_low, world.ws_high)
        end = np.clip(end, world.ws_low, world.ws_high)
        self._waypoints = [
            np.array([start[0], start[1], self.APPROACH_HEIGHT]),
            np.array([start[0], start[1], self.PUSH_HEIGHT]),
            np.array([end[0], end[1], self.PUSH_HEIGHT]),
            np.array([end[0], end[1], self.APPROACH_HEIGHT]),
        ]

    def __call__(self, world: ArmWorld) -> np.ndarray:
        if not self._waypoints:
            self._plan(world)
        ee = world.data.site_xpos[world._ee_site]
        delta = self._waypoints[0] - ee
        if np.linalg.norm(delta) < 0.015:
            self._waypoints.pop(0)
            return self(world) if self._waypoints else np.array([0, 0, 0, 1], np.float32)
        step = world.max_speed * world.frame_dt
        move = delta / max(step, np.abs(delta).max())
        move = move + self.rng.normal(0, self.noise, 3)
        return np.clip(np.concatenate([move, [1.0]]), -1, 1).astype(np.float32)


class MixedPolicy:
    """Alternates scripted pushes with stretches of random exploration, so data has both
    contact-rich interaction and the full behaviour vocabulary."""

    def __init__(self, rng: np.random.Generator, push_share: float = 0.7, segment=(8, 24)):
        self.rng, self.push_share, self.segment = rng, push_share, segment
        self._push, self._explore = PushController(rng), RandomExplorer(rng)
        self._left, self._active = 0, self._push

    def __call__(self, world: ArmWorld) -> np.ndarray:
        if self._left == 0:
            self._active = self._push if self.rng.random() < self.push_share else self._explore
            self._left = int(self.rng.integers(*self.segment))
        self._left -= 1
        return self._active(world)


POLICIES = {"mixed": MixedPolicy, "push": PushController, "random": RandomExplorer}
