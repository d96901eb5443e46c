"""The MuJoCo scene: a Kinova Jaco arm (from dm_control's bundled MJCF + meshes) on a table
with two rigid objects and one soft cube (flexcomp). Built with MjSpec, no files written."""
from __future__ import annotations

import os

# MuJoCo picks its GL backend at import time; headless machines have EGL (Mesa) but no display.
os.environ.setdefault("MUJOCO_GL", "egl")

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from genie_robot.errors import InputError

ARM_PREFIX = "arm/"
HAND_PREFIX = "arm/hand/"
ARM_JOINTS = tuple(f"{ARM_PREFIX}joint_{i}" for i in range(1, 7))
FINGER_JOINTS = tuple(f"{HAND_PREFIX}finger_{i}" for i in range(1, 4))
EE_SITE = f"{HAND_PREFIX}pinchsite"
FINGER_RANGE = (0.15, 1.35)  # radians, from jaco_hand.xml: open .. closed
TABLE_HEIGHT = 0.0
DEFAULT_CAMERA = "front"
CAMERAS = ("front", "top")


def check_camera(camera: str) -> str:
    if camera not in CAMERAS:
        raise InputError(f"unknown camera {camera!r}: the arm world has {', '.join(CAMERAS)}")
    return camera


def recorded_camera(episode) -> str:
    """The camera a stored MuJoCo episode was rendered from: its `camera` attribute, or `front` for
    stores written before episodes recorded it (the view every store had then)."""
    return getattr(episode, "camera", "front")


@dataclass(frozen=True)
class SceneObject:
    """An object the dataset tracks: its mask id, body (rigid) or flex name, and colour."""

    mask_id: int
    name: str
    kind: str  # "rigid" | "soft" | "arm"
    rgba: tuple[float, float, float, float]


# Mask ids are stable across versions: 0 = background/table, then these.
OBJECTS = (
    SceneObject(1, "arm", "arm", (0.1, 0.1, 0.1, 1.0)),
    SceneObject(2, "red_cube", "rigid", (0.85, 0.15, 0.1, 1.0)),
    SceneObject(3, "blue_cylinder", "rigid", (0.1, 0.3, 0.85, 1.0)),
    SceneObject(4, "soft_cube", "soft", (0.15, 0.75, 0.2, 1.0)),
)
MOVABLE_OBJECTS = tuple(o for o in OBJECTS if o.kind != "arm")


def _rgba(obj_name: str) -> str:
    return " ".join(f"{c:g}" for c in next(o.rgba for o in OBJECTS if o.name == obj_name))


def _look_at(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF camera attributes placing a camera at `pos` looking at `target`."""
    pos, target, up = (np.asarray(v, dtype=float) for v in (pos, target, up))
    forward = (target - pos) / np.linalg.norm(target - pos)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    axes = " ".join(f"{v:.4f}" for v in (*right, *cam_up))
    return f'pos="{" ".join(f"{v:g}" for v in pos)}" xyaxes="{axes}"'


# Flex elasticity needs an explicit integrator with a small step (DEPENDENCIES.md).
_WORLD_XML = f"""
<mujoco model="genie_arm_world">
  <compiler angle="radian"/>
  <option timestep="0.002" integrator="Euler" cone="elliptic" impratio="5"/>
  <visual>
    <quality shadowsize="0"/>
    <global offwidth="512" offheight="512"/>
    <headlight ambient=".35 .35 .35" diffuse=".5 .5 .5"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".62 .58 .52" rgb2=".56 .52 .46"
             width="64" height="64"/>
    <material name="table" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0.4 -0.4 1.5" dir="0 0.3 -1" diffuse=".5 .5 .5"/>
    <geom name="table" type="box" size=".7 .7 .02" pos="0.2 0 -.02" material="table"/>
    <camera name="front" {_look_at((0.92, -0.46, 0.52), (0.40, 0.0, 0.1))} fovy="45"/>
    <camera name="top" {_look_at((0.42, 0.0, 0.85), (0.42, 0.0, 0.0), up=(1.0, 0.0, 0.0))} fovy="45"/>
    <body name="red_cube" pos="0.45 0.05 0.031">
      <freejoint/>
      <geom name="red_cube" type="box" size=".03 .03 .03" rgba="{_rgba('red_cube')}"
            mass=".08" friction="0.6 0.01 0.001"/>
    </body>
    <body name="blue_cylinder" pos="0.45 0.2 0.031">
      <freejoint/>
      <geom name="blue_cylinder" type="cylinder" size=".03 .03" rgba="{_rgba('blue_cylinder')}"
            mass=".08" friction="0.6 0.01 0.001"/>
    </body>
    <flexcomp name="soft_cube" type="grid" count="4 4 4" spacing=".025 .025 .025"
              pos="0.35 -0.2 0.0395" radius=".002" rgba="{_rgba('soft_cube')}" dim="3"
              mass=".06" dof="trilinear">
      <elasticity young="2e3" poisson="0.25" damping="0.003"/>
      <contact selfcollide="none" condim="3" solref="0.005 1" friction="0.6 0.01 0.001"/>
    </flexcomp>
  </worldbody>
</mujoco>
"""


def kinova_dir() -> Path:
    import dm_control

    path = Path(dm_control.__file__).parent / "third_party" / "kinova"
    if not (path / "jaco_arm.xml").is_file():
        raise FileNotFoundError(
            f"the Kinova Jaco model is missing from dm_control ({path}); reinstall with "
            "`pip install --force-reinstall dm-control`"
        )
    return path


def build_model() -> mujoco.MjModel:
    """Compile the scene: world + Jaco arm on the table at the origin + 3-finger hand."""
    spec = mujoco.MjSpec.from_string(_WORLD_XML)
    kinova = kinova_dir()
    arm = mujoco.MjSpec.from_file(str(kinova / "jaco_arm.xml"))
    hand = mujoco.MjSpec.from_file(str(kinova / "jaco_hand.xml"))
    for part in (arm, hand):
        part.meshdir = str(kinova / "meshes_decimated")
    arm.site("wristsite").attach_body(hand.body("hand"), "hand/", "")
    spec.worldbody.add_frame().attach_body(arm.body("b_base"), ARM_PREFIX, "")

    # Gravity compensation lets stiff position servos track IK targets without sag.
    for body in spec.bodies:
        if body.name.startswith(ARM_PREFIX):
            body.gravcomp = 1.0
    for joint_name in ARM_JOINTS:
        act = spec.add_actuator(name=joint_name, target=joint_name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=400.0, kv=40.0)
    for joint_name in FINGER_JOINTS:
        act = spec.add_actuator(name=joint_name, target=joint_name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=5.0, kv=0.5)
    return spec.compile()
