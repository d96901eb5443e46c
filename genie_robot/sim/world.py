"""ArmWorld: the MuJoCo arm world driven by end-effector commands.

A command is (vx, vy, vz, grip) in [-1, 1]: end-effector velocity as a fraction of
`max_speed`, and the gripper's closing rate (+1 closes, -1 opens). Each `step` holds the
command for one frame (`frame_dt` seconds of physics) and returns nothing; `render`,
`masks` and `state` read the world afterwards. Cartesian control is damped-least-squares
IK on the 6 arm joints (position + a fixed downward hand orientation) feeding stiff
position servos, so commands mean the same thing wherever the arm is.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco  # noqa: E402  (scene sets MUJOCO_GL before mujoco is imported)
import numpy as np

from genie_robot.errors import GenieRobotError, InputError
from genie_robot.sim.scene import (
    ARM_JOINTS,
    ARM_PREFIX,
    DEFAULT_CAMERA,
    EE_SITE,
    FINGER_JOINTS,
    FINGER_RANGE,
    MOVABLE_OBJECTS,
    OBJECTS,
    build_model,
    check_camera,
)

_OBJ_GEOM, _OBJ_FLEX = int(mujoco.mjtObj.mjOBJ_GEOM), int(mujoco.mjtObj.mjOBJ_FLEX)
COMMAND_NAMES = ("ee_vx", "ee_vy", "ee_vz", "gripper")
# Hand orientation held fixed: pinch site x along world x, approach axis pointing down.
_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
# An elbow-up IK solution above the workspace; IK warm-starts from it at every reset.
_HOME_QPOS = np.array([-0.247, 2.517, 5.08, 2.969, 0.67, -1.99])


@dataclass(frozen=True)
class Workspace:
    """Box the end-effector target is kept inside (metres, world frame)."""

    low: tuple[float, float, float] = (0.22, -0.32, 0.02)
    high: tuple[float, float, float] = (0.62, 0.32, 0.30)


def rigid_residual(rest_N3: np.ndarray, current_N3: np.ndarray) -> float:
    """RMS distance between two centred point sets after the best rotation (Kabsch)."""
    u, _, vt = np.linalg.svd(current_N3.T @ rest_N3)
    sign = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    aligned = rest_N3 @ rotation.T
    return float(np.sqrt(np.mean(np.sum((current_N3 - aligned) ** 2, axis=-1))))


# 5 Hz (RT-1 records at 3 Hz): the hand's lag behind a new command is fixed in seconds, so at
# 10 Hz a frame's motion often still follows the last command, and labels read from the hand's
# motion agree far less with the commanded behaviours (benchmarks/motion_labels.py;
# docs/experiments/frame_rate_5hz.md).
FRAME_DT = 0.2


class ArmWorld:
    def __init__(
        self,
        frame_dt: float = FRAME_DT,
        max_speed: float = 0.2,
        grip_rate: float = 3.0,
        workspace: Workspace = Workspace(),
        camera: str = DEFAULT_CAMERA,
    ):
        self.camera = check_camera(camera)  # what render() and masks() show unless told otherwise
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        self.frame_dt = frame_dt
        self.substeps = max(1, round(frame_dt / self.model.opt.timestep))
        self.max_speed = max_speed
        self.grip_rate = grip_rate  # rad/s of finger travel at |grip| = 1
        self.ws_low = np.array(workspace.low)
        self.ws_high = np.array(workspace.high)

        m = self.model
        arm_jids = [m.joint(n).id for n in ARM_JOINTS]
        self._arm_qadr = m.jnt_qposadr[arm_jids]
        self._arm_dadr = m.jnt_dofadr[arm_jids]
        self._finger_qadr = m.jnt_qposadr[[m.joint(n).id for n in FINGER_JOINTS]]
        self._arm_act = np.array([m.actuator(n).id for n in ARM_JOINTS])
        self._finger_act = np.array([m.actuator(n).id for n in FINGER_JOINTS])
        self._ee_site = m.site(EE_SITE).id
        self._jac_pos = np.zeros((3, m.nv))
        self._jac_rot = np.zeros((3, m.nv))
        self._geom_mask = self._geom_mask_table()
        self._rigid_bodies = {o.name: m.body(o.name).id for o in MOVABLE_OBJECTS if o.kind == "rigid"}
        # (dof addresses, state key) of the velocities a replay needs: the arm's joints, each rigid object's free joint.
        self._velocity_keys = [(self._arm_dadr, "joint_vel"),
                               *((m.jnt_dofadr[m.body_jntadr[body]] + np.arange(6), f"{name}_vel")
                                 for name, body in self._rigid_bodies.items())]
        self._soft_flex = {
            o.name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_FLEX, o.name)
            for o in MOVABLE_OBJECTS
            if o.kind == "soft"
        }
        self._flex_mask = {self._soft_flex[o.name]: o.mask_id for o in OBJECTS if o.kind == "soft"}
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.rng = np.random.default_rng(0)
        self.ee_target = np.zeros(3)
        self.grip_target = FINGER_RANGE[0]

    # ------------------------------------------------------------------ setup
    def _geom_mask_table(self) -> np.ndarray:
        m = self.model
        table = np.zeros(m.ngeom, dtype=np.uint8)
        mask_of = {o.name: o.mask_id for o in OBJECTS}
        for g in range(m.ngeom):
            body = m.body(m.geom_bodyid[g]).name
            if body.startswith(ARM_PREFIX):
                table[g] = mask_of["arm"]
            elif body in mask_of:
                table[g] = mask_of[body]
        return table

    def reset(self, seed: int | None = None, layout: dict | None = None) -> None:
        """Reset to a random (seeded) layout: objects scattered on the table, hand above them.

        `layout` (from `layout()`) restores an exact earlier start instead of sampling one.
        """
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        layout = layout or self._sample_layout()
        for name, (x, y, yaw) in layout["objects"].items():
            self._place(name, x, y, yaw)
        self.ee_target = np.array(layout["ee"], dtype=float)
        self.grip_target = float(layout["grip"])
        d.qpos[self._arm_qadr] = _HOME_QPOS
        for _ in range(200):  # converge IK kinematically before any physics
            d.qpos[self._arm_qadr] += self._ik_delta()
        d.qpos[self._finger_qadr] = self.grip_target
        d.ctrl[self._arm_act] = d.qpos[self._arm_qadr]
        d.ctrl[self._finger_act] = self.grip_target
        mujoco.mj_forward(m, d)
        self._soft_rest = {n: self._flex_vertices(f) for n, f in self._soft_flex.items()}
        self._soft_rest_centered = {n: v - v.mean(0) for n, v in self._soft_rest.items()}
        self._initial_layout = layout
        # Let objects settle under gravity with the arm holding still.
        for _ in range(round(0.3 / m.opt.timestep)):
            mujoco.mj_step(m, d)

    def layout(self) -> dict:
        """The start layout of the current episode (feed back to `reset(layout=...)`)."""
        return self._initial_layout

    def set_state(self, state: dict) -> None:
        """Put the world in a recorded instant: one frame of `state()` / a store's state/*
        (joint_pos, gripper, ee_pos, <rigid>_pose, <soft>_vertices). The soft cube's nodes
        are solved from its vertices by least squares (its vertices are a fixed linear blend of
        the nodes) and start at rest. Where the state also holds the controller's `ee_target`
        and the arm's and rigid objects' velocities (`joint_vel`, `<rigid>_vel`; stores written
        before they were recorded lack them), those are restored too: without them the hand
        starts at rest with its target on itself, and replaying the recorded commands from
        there drifts from the recording (benchmarks/mujoco_replay.py measures both)."""
        needed = {"joint_pos", "gripper", "ee_pos", *(f"{n}_pose" for n in self._rigid_bodies),
                  *(f"{n}_vertices" for n in self._soft_flex)}
        if missing := sorted(needed - set(state)):
            raise InputError(f"cannot restore the MuJoCo world: the state lacks {', '.join(missing)}; "
                             "use episodes generated by `genie-robot data mujoco`")
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        mujoco.mj_forward(m, d)
        self._soft_rest_centered = {}
        for name, f in self._soft_flex.items():
            rest = self._flex_vertices(f)
            self._soft_rest_centered[name] = rest - rest.mean(0)
            adrs = np.concatenate([m.jnt_qposadr[m.body_jntadr[b]] + np.arange(m.body_jntnum[b])
                                   for b in self._flex_node_bodies(f)])
            basis = []
            for adr in adrs:  # vertices move linearly with each node coordinate
                d.qpos[adr] = 1.0
                mujoco.mj_forward(m, d)
                basis.append((self._flex_vertices(f) - rest).ravel())
                d.qpos[adr] = 0.0
            target = np.asarray(state[f"{name}_vertices"], np.float64) - rest
            d.qpos[adrs] = np.linalg.lstsq(np.stack(basis, 1), target.ravel(), rcond=None)[0]
        for name, body in self._rigid_bodies.items():
            adr = m.jnt_qposadr[m.body_jntadr[body]]
            d.qpos[adr : adr + 7] = state[f"{name}_pose"]
        self.grip_target = float(FINGER_RANGE[0] + np.asarray(state["gripper"]).item() * (FINGER_RANGE[1] - FINGER_RANGE[0]))
        self.ee_target = np.clip(np.asarray(state.get("ee_target", state["ee_pos"]), np.float64), self.ws_low, self.ws_high)
        d.qpos[self._arm_qadr] = state["joint_pos"]
        for dofs, key in self._velocity_keys:
            if key in state:
                if np.shape(state[key]) != dofs.shape:
                    raise InputError(f"cannot restore the MuJoCo world: state {key} has shape {np.shape(state[key])}, "
                                     f"expected {dofs.shape}; use a frame of `genie-robot data mujoco` episodes")
                d.qvel[dofs] = state[key]
        d.qpos[self._finger_qadr] = self.grip_target
        d.ctrl[self._arm_act] = d.qpos[self._arm_qadr]
        d.ctrl[self._finger_act] = self.grip_target
        mujoco.mj_forward(m, d)
        self._initial_layout = None  # not a sampled layout

    def snapshot(self) -> tuple:
        """Everything `step` depends on, exactly (physics state and control targets)."""
        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(self.model, kind))
        mujoco.mj_getState(self.model, self.data, physics, kind)
        return physics, self.ee_target.copy(), self.grip_target, self._soft_rest_centered

    def restore(self, snapshot: tuple) -> None:
        """Return to a `snapshot()` of this world or of another ArmWorld (same scene)."""
        physics, ee_target, self.grip_target, self._soft_rest_centered = snapshot
        mujoco.mj_setState(self.model, self.data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        self.ee_target = ee_target.copy()

    def _sample_layout(self) -> dict:
        # Objects on a jittered grid so they never start interpenetrating.
        slots = np.array([[0.36, -0.18], [0.36, 0.02], [0.36, 0.2], [0.52, -0.12], [0.52, 0.1]])
        chosen = self.rng.choice(len(slots), size=len(MOVABLE_OBJECTS), replace=False)
        objects = {}
        for obj, slot in zip(MOVABLE_OBJECTS, chosen):
            x, y = slots[slot] + self.rng.uniform(-0.03, 0.03, size=2)
            objects[obj.name] = (float(x), float(y), float(self.rng.uniform(-np.pi, np.pi)))
        ee = self.rng.uniform([0.3, -0.15, 0.12], [0.5, 0.15, 0.2])
        return {"objects": objects, "ee": ee.tolist(), "grip": FINGER_RANGE[0]}

    def _place(self, name: str, x: float, y: float, yaw: float) -> None:
        m, d = self.model, self.data
        if name in self._rigid_bodies:
            body = self._rigid_bodies[name]
            adr = m.jnt_qposadr[m.body_jntadr[body]]
            half_height = m.geom_size[m.body_geomadr[body]][-1]
            d.qpos[adr : adr + 3] = (x, y, half_height + 0.001)
            d.qpos[adr + 3 : adr + 7] = (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
        else:
            # Flex nodes are slide-jointed bodies whose qpos is an offset from the compiled
            # position, so shifting every node moves the soft cube rigidly.
            bodies = self._flex_node_bodies(self._soft_flex[name])
            centre = np.mean([m.body_pos[b] for b in bodies], axis=0)
            for b in bodies:
                adr = m.jnt_qposadr[m.body_jntadr[b]]
                d.qpos[adr] = x - centre[0]
                d.qpos[adr + 1] = y - centre[1]

    def _flex_node_bodies(self, f: int) -> list[int]:
        m = self.model
        start, count = m.flex_nodeadr[f], m.flex_nodenum[f]
        return [int(b) for b in m.flex_nodebodyid[start : start + count]]

    def _flex_vertices(self, f: int) -> np.ndarray:
        m, d = self.model, self.data
        start, count = m.flex_vertadr[f], m.flex_vertnum[f]
        return d.flexvert_xpos[start : start + count].copy()

    # ------------------------------------------------------------------ control
    def _ik_delta(self) -> np.ndarray:
        """One damped-least-squares step toward (ee_target, downward orientation)."""
        m, d = self.model, self.data
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        pos = d.site_xpos[self._ee_site]
        rot = d.site_xmat[self._ee_site].reshape(3, 3)
        err_pos = self.ee_target - pos
        err_rot = 0.5 * sum(np.cross(rot[:, i], _DOWN[:, i]) for i in range(3))
        mujoco.mj_jacSite(m, d, self._jac_pos, self._jac_rot, self._ee_site)
        jac = np.vstack([self._jac_pos[:, self._arm_dadr], self._jac_rot[:, self._arm_dadr]])
        err = np.concatenate([err_pos, err_rot])
        return jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)

    @staticmethod
    def check_command(command) -> np.ndarray:
        cmd = np.asarray(command, dtype=np.float64)
        if cmd.shape != (4,):
            raise InputError(f"arm command must have shape (4,) = {COMMAND_NAMES}, got {cmd.shape}")
        if not np.all(np.isfinite(cmd)):
            raise InputError(f"arm command must be finite, got {cmd.tolist()}")
        if np.any(np.abs(cmd) > 1.0 + 1e-6):
            raise InputError(f"arm command components must lie in [-1, 1], got {cmd.tolist()}")
        return cmd

    def step(self, command) -> None:
        """Hold `command` for one frame of physics."""
        cmd = self.check_command(command)
        m, d = self.model, self.data
        self.ee_target = np.clip(
            self.ee_target + cmd[:3] * self.max_speed * self.frame_dt, self.ws_low, self.ws_high
        )
        self.grip_target = float(
            np.clip(self.grip_target + cmd[3] * self.grip_rate * self.frame_dt, *FINGER_RANGE)
        )
        d.ctrl[self._finger_act] = self.grip_target
        # Re-solve IK a few times per frame from the measured pose so servo lag cannot
        # accumulate into drift; the servo target is the current pose plus the IK correction.
        ik_every = max(1, self.substeps // 5)
        for i in range(self.substeps):
            if i % ik_every == 0:
                qpos_arm = d.qpos[self._arm_qadr].copy()
                d.ctrl[self._arm_act] = qpos_arm + self._ik_delta()
            mujoco.mj_step(m, d)

    # ------------------------------------------------------------------ observation
    def _renderer(self, height: int, width: int) -> mujoco.Renderer:
        key = (height, width)
        if key not in self._renderers:
            if height > self.model.vis.global_.offheight or width > self.model.vis.global_.offwidth:
                self.model.vis.global_.offheight = max(height, self.model.vis.global_.offheight)
                self.model.vis.global_.offwidth = max(width, self.model.vis.global_.offwidth)
            try:
                self._renderers[key] = mujoco.Renderer(self.model, height, width)
            except mujoco.FatalError as exc:
                raise GenieRobotError(
                    f"MuJoCo could not create an offscreen OpenGL context ({exc}); set MUJOCO_GL=egl "
                    "(or osmesa) before anything imports mujoco, and run scripts/install_system_deps.sh"
                ) from None
        return self._renderers[key]

    def render(self, height: int = 64, width: int | None = None, camera: str | None = None) -> np.ndarray:
        r = self._renderer(height, width or height)
        r.update_scene(self.data, camera or self.camera)
        return r.render()

    def masks(self, height: int = 64, width: int | None = None, camera: str | None = None) -> np.ndarray:
        """Per-pixel object ids (0 background, see scene.OBJECTS), uint8 [H, W]."""
        r = self._renderer(height, width or height)
        r.update_scene(self.data, camera or self.camera)
        r.enable_segmentation_rendering()
        try:
            seg = r.render()
        finally:
            r.disable_segmentation_rendering()
        ids, types = seg[..., 0], seg[..., 1]
        out = np.zeros(ids.shape, dtype=np.uint8)
        # Compare with plain ints: numpy falls back to per-element Python calls for pybind enums.
        geom = (types == _OBJ_GEOM) & (ids >= 0)
        out[geom] = self._geom_mask[ids[geom]]
        for flex_id, mask_id in self._flex_mask.items():
            out[(types == _OBJ_FLEX) & (ids == flex_id)] = mask_id
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Ground-truth state of this instant, float32 arrays (names are the store's state/* keys)."""
        d = self.data
        fingers = d.qpos[self._finger_qadr]
        out = {
            "ee_pos": d.site_xpos[self._ee_site].astype(np.float32),
            "gripper": np.array(
                [(fingers.mean() - FINGER_RANGE[0]) / (FINGER_RANGE[1] - FINGER_RANGE[0])], np.float32
            ),
            "joint_pos": d.qpos[self._arm_qadr].astype(np.float32),
            "ee_target": self.ee_target.astype(np.float32),
        }
        for name, body in self._rigid_bodies.items():
            out[f"{name}_pose"] = np.concatenate([d.xpos[body], d.xquat[body]]).astype(np.float32)
        for dofs, key in self._velocity_keys:
            out[key] = d.qvel[dofs].astype(np.float32)
        for name, f in self._soft_flex.items():
            out[f"{name}_vertices"] = self._flex_vertices(f).astype(np.float32)
        return out

    def deformation(self, name: str = "soft_cube") -> float:
        """RMS vertex displacement from the rest shape after removing the best rigid motion
        (Kabsch), in metres: pure shape change, zero for a soft cube that only slides or tips."""
        verts = self._flex_vertices(self._soft_flex[name])
        return rigid_residual(self._soft_rest_centered[name], verts - verts.mean(0))

    def object_positions(self) -> dict[str, np.ndarray]:
        d = self.data
        out = {name: d.xpos[b].copy() for name, b in self._rigid_bodies.items()}
        out.update({n: self._flex_vertices(f).mean(0) for n, f in self._soft_flex.items()})
        return out

    def in_contact(self) -> bool:
        """Whether any arm geom touches a movable object right now."""
        d = self.data
        arm_id = next(o.mask_id for o in OBJECTS if o.kind == "arm")
        for i in range(d.ncon):
            c = d.contact[i]
            sides = []
            for geom, flex in ((c.geom[0], c.flex[0]), (c.geom[1], c.flex[1])):
                if geom >= 0:
                    sides.append(int(self._geom_mask[geom]))
                else:
                    sides.append(self._flex_mask.get(int(flex), 0))
            if arm_id in sides and any(s not in (0, arm_id) for s in sides):
                return True
        return False

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # ------------------------------------------------------------------ entities (world frame)
    def entity_names(self) -> list[str]:
        """The arm and the movable objects, as scene.OBJECTS names them."""
        return [o.name for o in OBJECTS]

    def _entity(self, name: str) -> str:
        if name not in self.entity_names():
            raise InputError(f"no entity {name!r}; entities: {', '.join(self.entity_names())}")
        return next(o.kind for o in OBJECTS if o.name == name)

    def _soft_nodes(self, name: str) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The soft body's node bodies, their positions [N, 3] and their dof addresses [N, 3]
        (each node slides along the world axes from its compiled position)."""
        m = self.model
        bodies = self._flex_node_bodies(self._soft_flex[name])
        dofs = np.array([m.jnt_dofadr[m.body_jntadr[b]] + np.arange(3) for b in bodies])
        return bodies, self.data.xpos[bodies].copy(), dofs

    def _soft_rotation(self, name: str) -> np.ndarray:
        """The rotation that best carries the soft body's compiled node layout onto its nodes now (Kabsch)."""
        bodies, nodes, _ = self._soft_nodes(name)
        rest = self.model.body_pos[bodies]
        u, _, vt = np.linalg.svd((rest - rest.mean(0)).T @ (nodes - nodes.mean(0)))
        return vt.T @ np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))]) @ u.T

    def entity_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position [3], quaternion w, x, y, z [4]) of an entity's frame: the arm's base, a
        rigid object's body, the soft body's node centroid turned as its nodes are turned."""
        kind, d = self._entity(name), self.data
        if kind == "soft":
            quaternion = np.zeros(4)
            mujoco.mju_mat2Quat(quaternion, self._soft_rotation(name).ravel())
            return self._soft_nodes(name)[1].mean(0), quaternion
        body = self.model.body(f"{ARM_PREFIX}b_base").id if kind == "arm" else self._rigid_bodies[name]
        return d.xpos[body].copy(), d.xquat[body].copy()

    def entity_twist(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(linear, angular) velocity [3] each, world axes, of the entity frame's origin."""
        kind, m, d = self._entity(name), self.model, self.data
        if kind == "soft":  # the rigid motion that best fits the nodes' velocities
            _, nodes, dofs = self._soft_nodes(name)
            velocities, arms = d.qvel[dofs], nodes - nodes.mean(0)
            linear = velocities.mean(0)
            skew = np.stack([np.cross(np.eye(3), arm) for arm in arms])  # v = w x r = -[r]x w, per node
            angular = np.linalg.lstsq(-skew.reshape(-1, 3), (velocities - linear).ravel(), rcond=None)[0]
            return linear, angular
        body = m.body(f"{ARM_PREFIX}b_base").id if kind == "arm" else self._rigid_bodies[name]
        velocity = np.zeros(6)
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, body, velocity, 0)
        return velocity[3:], velocity[:3]

    def entity_bounds(self, name: str, local: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The entity's axis-aligned box (low, high) from MuJoCo's geom boxes (the soft body: its
        vertices and their radius), in the world, or with `local` in the entity's own frame."""
        kind, m, d = self._entity(name), self.model, self.data
        origin, rotation = np.zeros(3), np.eye(3)
        if local:
            origin, quaternion = self.entity_pose(name)
            flat = np.zeros(9)
            mujoco.mju_quat2Mat(flat, quaternion)
            rotation = flat.reshape(3, 3)
        if kind == "soft":
            f = self._soft_flex[name]
            vertices = (self._flex_vertices(f) - origin) @ rotation
            return vertices.min(0) - m.flex_radius[f], vertices.max(0) + m.flex_radius[f]
        mask = next(o.mask_id for o in OBJECTS if o.name == name)
        geoms = np.flatnonzero(self._geom_mask == mask)
        rotations = rotation.T @ d.geom_xmat[geoms].reshape(-1, 3, 3)
        centres = (d.geom_xpos[geoms] - origin) @ rotation + np.einsum("gij,gj->gi", rotations, m.geom_aabb[geoms, :3])
        halves = np.einsum("gij,gj->gi", np.abs(rotations), m.geom_aabb[geoms, 3:])
        return (centres - halves).min(0), (centres + halves).max(0)

    def placeable_space(self) -> tuple[np.ndarray, np.ndarray]:
        """Where an object's position may be set: over the table, from its top to 1 m above."""
        table = self.model.geom("table")
        centre, half = table.pos, table.size
        return np.array([*(centre[:2] - half[:2]), centre[2] + half[2]]), np.array([*(centre[:2] + half[:2]), 1.0])

    def set_entity_pose(self, name: str, position, quaternion) -> None:
        """Move an object at once (its velocity kept): a rigid object's free joint, or every node
        of the soft body by one rigid motion (its shape kept). The arm's base is fixed."""
        kind, m, d = self._entity(name), self.model, self.data
        position = np.asarray(position, np.float64)
        quaternion = np.asarray(quaternion, np.float64) / np.linalg.norm(quaternion)
        if kind == "arm":
            raise InputError("the arm's base is fixed to the table; move its hand with arm commands")
        if kind == "rigid":
            adr = m.jnt_qposadr[m.body_jntadr[self._rigid_bodies[name]]]
            d.qpos[adr : adr + 7] = (*position, *quaternion)
        else:
            bodies, nodes, _ = self._soft_nodes(name)
            rotation = np.zeros(9)
            mujoco.mju_quat2Mat(rotation, quaternion)
            turn = rotation.reshape(3, 3) @ self._soft_rotation(name).T
            for body, node in zip(bodies, nodes):
                adr = m.jnt_qposadr[m.body_jntadr[body]]
                d.qpos[adr : adr + 3] = position + turn @ (node - nodes.mean(0)) - m.body_pos[body]
        mujoco.mj_forward(m, d)

    def set_entity_twist(self, name: str, linear, angular) -> None:
        """Set an object's velocity at once, world axes, at its frame's origin (the soft body:
        every node moving with that rigid motion)."""
        kind, m, d = self._entity(name), self.model, self.data
        linear, angular = np.asarray(linear, np.float64), np.asarray(angular, np.float64)
        if kind == "arm":
            raise InputError("the arm's base is fixed to the table; move its hand with arm commands")
        if kind == "rigid":
            body = self._rigid_bodies[name]
            adr = m.jnt_dofadr[m.body_jntadr[body]]
            d.qvel[adr : adr + 3] = linear  # a free joint: linear in world axes, angular in the body's
            d.qvel[adr + 3 : adr + 6] = d.xmat[body].reshape(3, 3).T @ angular
        else:
            _, nodes, dofs = self._soft_nodes(name)
            d.qvel[dofs] = linear + np.cross(angular, nodes - nodes.mean(0))
        mujoco.mj_forward(m, d)
