"""ROS 2 simulation_interfaces (ros-simulation/simulation_interfaces 2.1, as Gazebo, Isaac Sim
and O3DE implement it) for a node whose world advances one frame per command, so that a
client written for those simulators drives the world model or the MuJoCo twin the same way.

  ~/get_simulator_features  (srv) GetSimulatorFeatures  what follows, as feature constants
  ~/reset_simulation        (srv) ResetSimulation       restart from the start frame / layout
  ~/get_simulation_state    (srv) GetSimulationState    PLAYING, PAUSED or STOPPED
  ~/set_simulation_state    (srv) SetSimulationState
  ~/step_simulation         (srv) StepSimulation        N frames, only while PAUSED
  ~/simulate_steps          (action) SimulateSteps      N frames with feedback, cancellable
With a simulation clock (the MuJoCo twin): /clock (rosgraph_msgs/Clock) and SCOPE_TIME resets.
With entity state (the MuJoCo twin; a learned simulator has frames, not entities):
  ~/get_entities            (srv) GetEntities           names, filtered by name (regex), category,
                                                        tags and overlap with a box or sphere
  ~/get_entity_state        (srv) GetEntityState        pose and twist in the world frame
  ~/get_entities_states     (srv) GetEntitiesStates     the same for every entity a filter keeps
  ~/set_entity_state        (srv) SetEntityState        pose and / or twist of a movable entity
  ~/get_entity_info         (srv) GetEntityInfo         category, tags, description
  ~/get_entity_bounds       (srv) GetEntityBounds       box in the entity's own frame

PLAYING (the start): every command makes a frame at once, as the node's own topics always did.
PAUSED: commands wait in the node's bounded queue and each step takes the oldest, or holds
(a zero arm command; the world model's `default_action`) when none waits; leaving PAUSED drops
commands no step took. STOPPED: reset and paused, commands dropped; PLAYING or PAUSED leaves it.
The standard contradicts itself on STOPPED -> PAUSED: SimulationState.msg calls STOPPED
"pausing and resetting" (so pausing a stopped simulation changes nothing but the name), while
SetSimulationState.srv gives INCORRECT_TRANSITION as "pausing when in stopped state"; Gazebo
(ros_gz) allows it, and so does this node. A step call returns once its frames are published.
One step request runs at a time: a StepSimulation call or SimulateSteps goal that arrives while
another runs gets OPERATION_FAILED, so queued work stays bounded and no executor thread waits
behind another's request. A SimulateSteps goal is always accepted and ends aborted with
OPERATION_FAILED and a message when it cannot run (not PAUSED, a bad count, busy), as the
standard's action definition says."""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Vector3
from rclpy.action import ActionServer, CancelResponse
from rosgraph_msgs.msg import Clock
from simulation_interfaces.action import SimulateSteps
from simulation_interfaces.msg import Bounds, EntityState, Result, SimulationState, SimulatorFeatures
from simulation_interfaces.srv import (
    GetEntities,
    GetEntitiesStates,
    GetEntityBounds,
    GetEntityInfo,
    GetEntityState,
    GetSimulationState,
    GetSimulatorFeatures,
    ResetSimulation,
    SetEntityState,
    SetSimulationState,
    StepSimulation,
)

from genie_robot.errors import InputError

PLAYING, PAUSED, STOPPED = SimulationState.STATE_PLAYING, SimulationState.STATE_PAUSED, SimulationState.STATE_STOPPED
STATE_NAMES = {PLAYING: "PLAYING", PAUSED: "PAUSED", STOPPED: "STOPPED", SimulationState.STATE_QUITTING: "QUITTING",
               SimulationState.STATE_NO_WORLD: "NO_WORLD", SimulationState.STATE_LOADING_WORLD: "LOADING_WORLD"}
FEATURES = [SimulatorFeatures.SIMULATION_RESET, SimulatorFeatures.SIMULATION_RESET_STATE,
            SimulatorFeatures.SIMULATION_STATE_GETTING, SimulatorFeatures.SIMULATION_STATE_SETTING,
            SimulatorFeatures.SIMULATION_STATE_PAUSE, SimulatorFeatures.STEP_SIMULATION_SINGLE,
            SimulatorFeatures.STEP_SIMULATION_MULTIPLE, SimulatorFeatures.STEP_SIMULATION_ACTION]
CLOCK_FEATURES = [SimulatorFeatures.SIMULATION_RESET_TIME]
ENTITY_FEATURES = [SimulatorFeatures.ENTITY_TAGS, SimulatorFeatures.ENTITY_BOUNDS, SimulatorFeatures.ENTITY_BOUNDS_BOX,
                   SimulatorFeatures.ENTITY_CATEGORIES, SimulatorFeatures.ENTITY_STATE_GETTING,
                   SimulatorFeatures.ENTITY_STATE_SETTING, SimulatorFeatures.ENTITY_INFO_GETTING]
MAX_STEPS = 10_000  # per request: a bound on queued work, not on the simulation
SCOPE = ResetSimulation.Request
WORLD_FRAME = "world"
UNIT_QUATERNION_TOLERANCE = 1e-3  # |q| may differ from 1 by this much (float32 round trips), not more


@dataclass(frozen=True)
class Outcome:
    result: int
    message: str = ""


OK = Outcome(Result.RESULT_OK)
BUSY = Outcome(Result.RESULT_OPERATION_FAILED, "another step request is running; wait for its answer (or cancel "
                                                "its SimulateSteps goal) and ask again")


def transition(current: int, target: int) -> Outcome:
    """SetSimulationState from `current` to `target` (STOPPED -> PAUSED allowed, as Gazebo does)."""
    if target == current:
        return Outcome(SetSimulationState.Response.ALREADY_IN_TARGET_STATE, f"already {STATE_NAMES[current]}")
    if target not in (PLAYING, PAUSED, STOPPED):
        return Outcome(Result.RESULT_FEATURE_UNSUPPORTED,
                       f"state {STATE_NAMES.get(target, target)} is not supported: this simulator plays, pauses and "
                       "stops one world (stop the node to quit it)")
    return OK


def step_refusal(state: int, steps: int) -> Outcome | None:
    """Why a request for `steps` frames in `state` cannot run, or None when it can."""
    if state != PAUSED:
        return Outcome(Result.RESULT_OPERATION_FAILED,
                       f"the simulation is {STATE_NAMES[state]}: stepping needs PAUSED (SetSimulationState to PAUSED)")
    if not 1 <= steps <= MAX_STEPS:
        return Outcome(Result.RESULT_OPERATION_FAILED, f"steps must be 1..{MAX_STEPS}, got {steps}")
    return None


def reset_scope(scope: int, has_clock: bool) -> tuple[bool, bool] | Outcome:
    """(reset time, reset state) for a ResetSimulation scope, or why it cannot be done."""
    if scope in (SCOPE.SCOPE_DEFAULT, SCOPE.SCOPE_ALL):
        return has_clock, True
    supported = SCOPE.SCOPE_STATE | (SCOPE.SCOPE_TIME if has_clock else 0)
    if scope & ~supported:
        missing = [name for bit, name in ((SCOPE.SCOPE_SPAWNED, "SCOPE_SPAWNED (this simulator spawns no entities)"),
                                          (SCOPE.SCOPE_TIME, "SCOPE_TIME (it has no simulation clock)"))
                   if scope & ~supported & bit]
        return Outcome(Result.RESULT_FEATURE_UNSUPPORTED,
                       f"cannot reset {' or '.join(missing) or f'scope {scope}'}; reset with SCOPE_ALL or "
                       f"{'SCOPE_STATE' if not has_clock else 'SCOPE_STATE / SCOPE_TIME'}")
    return bool(scope & SCOPE.SCOPE_TIME), bool(scope & SCOPE.SCOPE_STATE)


class SimulationClock:
    """Simulation time: `frame_dt` per frame since the last time reset, on /clock (what nodes
    with use_sim_time follow, as with Gazebo). With the node's own use_sim_time the stamps of
    its messages are this time; without it they are wall time, as before, so that nodes that
    pair its frames with the world model's by stamp keep one clock."""

    def __init__(self, node, frame_dt: float):
        self.node, self.frame_dt, self.frames = node, frame_dt, 0
        self.sim_stamps = bool(node.get_parameter("use_sim_time").value)
        self.publisher = node.create_publisher(Clock, "/clock", 10)
        self._publish()

    def now(self) -> Time:
        nanoseconds = round(self.frames * self.frame_dt * 1e9)
        return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)

    def stamp(self) -> Time:
        """The stamp of a message sent now: simulation time with use_sim_time, else wall time."""
        return self.now() if self.sim_stamps else self.node.get_clock().now().to_msg()

    def advance(self) -> None:
        self.frames += 1
        self._publish()

    def reset(self) -> None:
        self.frames = 0
        self._publish()

    def _publish(self) -> None:
        self.publisher.publish(Clock(clock=self.now()))


@dataclass(frozen=True)
class Entity:
    category: int  # simulation_interfaces/EntityCategory
    tags: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Entities:
    """A simulator's entities: their info by name, and `world` with ArmWorld's entity methods
    (entity_pose, entity_twist, entity_bounds, placeable_space, set_entity_pose,
    set_entity_twist; a set raises InputError for an entity that cannot be moved)."""

    info: dict[str, Entity]
    world: object


def _finite(*vectors) -> bool:
    return all(math.isfinite(v) for vector in vectors for v in vector)


def pose_refusal(position, quaternion, low, high) -> Outcome | None:
    """Why SetEntityState cannot put an entity at `position` turned by `quaternion` (x, y, z, w),
    with `low`/`high` the space positions may take; None when it can."""
    if not _finite(position, quaternion):
        return Outcome(SetEntityState.Response.INVALID_POSE, f"the pose has NaN or inf: {list(position)}, {list(quaternion)}")
    norm = math.sqrt(sum(q * q for q in quaternion))
    if abs(norm - 1) > UNIT_QUATERNION_TOLERANCE:
        return Outcome(SetEntityState.Response.INVALID_POSE,
                       f"the orientation quaternion has length {norm:.6g}; give a unit quaternion (x, y, z, w)")
    if any(not lo <= p <= hi for p, lo, hi in zip(position, low, high)):
        return Outcome(SetEntityState.Response.INVALID_POSE,
                       f"position {[round(p, 4) for p in position]} is outside the world: x, y, z within "
                       f"{[round(v, 4) for v in low]} .. {[round(v, 4) for v in high]} (over the table)")
    return None


def overlaps(low, high, bounds) -> bool | Outcome:
    """Whether a world box (low, high) overlaps filter `bounds` (a Bounds message), or why it
    cannot be told (a convex hull, a malformed box or sphere)."""
    points = [np.array([p.x, p.y, p.z]) for p in bounds.points]
    if bounds.type == Bounds.TYPE_BOX and len(points) == 2:
        corner_low, corner_high = np.minimum(*points), np.maximum(*points)
        return bool(np.all(low <= corner_high) and np.all(corner_low <= high))
    if bounds.type == Bounds.TYPE_SPHERE and len(points) == 2:
        centre, radius = points[0], points[1][0]
        return bool(np.linalg.norm(centre - np.clip(centre, low, high)) <= radius)
    if bounds.type in (Bounds.TYPE_BOX, Bounds.TYPE_SPHERE):
        return Outcome(Result.RESULT_OPERATION_FAILED, f"filter bounds of type {bounds.type} need 2 points, got {len(points)}")
    return Outcome(Result.RESULT_FEATURE_UNSUPPORTED, f"filter bounds of type {bounds.type}: only TYPE_BOX and TYPE_SPHERE "
                                                      "are supported")


def select(entities: dict[str, Entity], filters, world_bounds: Callable) -> list[str] | Outcome:
    """The names `filters` (EntityFilters) keep, in order: name regex (searched, Python's
    syntax for POSIX extended), any of the categories, any or all of the tags, overlap."""
    try:
        pattern = re.compile(filters.filter)
    except re.error as exc:
        return Outcome(Result.RESULT_OPERATION_FAILED, f"filter {filters.filter!r} is not a regular expression ({exc})")
    categories = {c.category for c in filters.categories}
    tags, all_tags = set(filters.tags.tags), filters.tags.filter_mode == filters.tags.FILTER_MODE_ALL
    names = []
    for name, entity in entities.items():
        if not pattern.search(name) or (categories and entity.category not in categories):
            continue
        if tags and not (tags <= set(entity.tags) if all_tags else tags & set(entity.tags)):
            continue
        if filters.bounds.type != Bounds.TYPE_EMPTY:
            inside = overlaps(*world_bounds(name), filters.bounds)
            if isinstance(inside, Outcome):
                return inside
            if not inside:
                continue
        names.append(name)
    return names


class SimulationControl:
    """The services and the action on `node`, driving it through three callbacks:
    reset() restarts the world, step() makes one frame and returns whether it was published,
    and pause(paused: bool, stopped: bool) tells the node how to treat incoming commands.
    With `clock` (a SimulationClock the node advances per frame) time resets on its own scope;
    with `entities` the entity services run. With a reentrant `callback_group` (and a
    multi-threaded executor) a step blocks only its caller; in the node's default group steps
    run in the executor thread, one after another, which suits a world that steps in
    milliseconds and must stay on one thread (MuJoCo's GL)."""

    def __init__(self, node, reset: Callable[[], None], step: Callable[[], bool],
                 pause: Callable[[bool, bool], None], about: str, callback_group=None,
                 clock: SimulationClock | None = None, entities: Entities | None = None):
        self.node, self._reset, self._step, self._pause, self.about = node, reset, step, pause, about
        self.clock, self.entities = clock, entities
        self.features = FEATURES + (CLOCK_FEATURES if clock else []) + (ENTITY_FEATURES if entities else [])
        self.state = PLAYING
        self._state_lock, self._step_lock = threading.Lock(), threading.Lock()
        services = [(GetSimulatorFeatures, "get_simulator_features", self._on_features),
                    (ResetSimulation, "reset_simulation", self._on_reset),
                    (GetSimulationState, "get_simulation_state", self._on_get_state),
                    (SetSimulationState, "set_simulation_state", self._on_set_state),
                    (StepSimulation, "step_simulation", self._on_step)]
        if entities:
            services += [(GetEntities, "get_entities", self._on_get_entities),
                         (GetEntityState, "get_entity_state", self._on_get_entity_state),
                         (GetEntitiesStates, "get_entities_states", self._on_get_entities_states),
                         (SetEntityState, "set_entity_state", self._on_set_entity_state),
                         (GetEntityInfo, "get_entity_info", self._on_get_entity_info),
                         (GetEntityBounds, "get_entity_bounds", self._on_get_entity_bounds)]
        self.services = [node.create_service(kind, f"~/{name}", callback, callback_group=callback_group)
                         for kind, name, callback in services]
        self.action_server = ActionServer(node, SimulateSteps, "~/simulate_steps", self._execute,
                                          cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=callback_group)

    def destroy(self) -> None:
        for service in self.services:
            self.node.destroy_service(service)
        self.action_server.destroy()

    def reset(self) -> None:
        """The whole world and its time back to the start (the time first: the start frame is
        stamped at 0)."""
        if self.clock:
            self.clock.reset()
        self._reset()

    # ------------------------------------------------------------------ services
    def _on_features(self, request, response):
        response.features.features = self.features
        response.features.custom_info = self.about
        return response

    def _on_reset(self, request, response):
        scope = reset_scope(request.scope, self.clock is not None)
        if not isinstance(scope, Outcome):
            time, state = scope
            if time:
                self.clock.reset()
            if state:
                self._reset()
        response.result = _result(scope if isinstance(scope, Outcome) else OK)
        return response

    def _on_get_state(self, request, response):
        response.state.state = self.state
        response.result = _result(OK)
        return response

    def _on_set_state(self, request, response):
        target = request.state.state
        with self._state_lock:
            outcome = transition(self.state, target)
            if outcome.result == Result.RESULT_OK:
                if target == STOPPED:
                    self.reset()
                self.state = target
                self._pause(target != PLAYING, target == STOPPED)
        self.node.get_logger().info(f"simulation state {STATE_NAMES[self.state]}"
                                    + (f" ({outcome.message})" if outcome.message else ""))
        response.result = _result(outcome)
        return response

    def _on_step(self, request, response):
        response.result = _result(self._run_steps(request.steps))
        return response

    # ------------------------------------------------------------------ entities
    def _world_bounds(self, name: str):
        return self.entities.world.entity_bounds(name)

    def _known(self, name: str) -> Outcome | None:
        if name in self.entities.info:
            return None
        return Outcome(Result.RESULT_NOT_FOUND, f"no entity {name!r}; entities: {', '.join(self.entities.info)}")

    def _entity_state(self, name: str) -> EntityState:
        world = self.entities.world
        (x, y, z), (qw, qx, qy, qz) = world.entity_pose(name)
        linear, angular = world.entity_twist(name)
        state = EntityState()
        state.header.frame_id = WORLD_FRAME
        state.header.stamp = self.clock.stamp() if self.clock else self.node.get_clock().now().to_msg()
        p, o = state.pose.position, state.pose.orientation
        p.x, p.y, p.z, o.x, o.y, o.z, o.w = (float(v) for v in (x, y, z, qx, qy, qz, qw))
        for vector, values in ((state.twist.linear, linear), (state.twist.angular, angular)):
            vector.x, vector.y, vector.z = (float(v) for v in values)
        return state  # acceleration is not reported (zeros)

    def _on_get_entities(self, request, response):
        names = select(self.entities.info, request.filters, self._world_bounds)
        if not isinstance(names, Outcome):
            response.entities = names
        response.result = _result(names if isinstance(names, Outcome) else OK)
        return response

    def _on_get_entity_state(self, request, response):
        missing = self._known(request.entity)
        if missing is None:
            response.state = self._entity_state(request.entity)
        response.result = _result(missing or OK)
        return response

    def _on_get_entities_states(self, request, response):
        names = select(self.entities.info, request.filters, self._world_bounds)
        if not isinstance(names, Outcome):
            response.entities, response.states = names, [self._entity_state(n) for n in names]
        response.result = _result(names if isinstance(names, Outcome) else OK)
        return response

    def _on_set_entity_state(self, request, response):
        response.result = _result(self._set_entity_state(request))
        return response

    def _set_entity_state(self, request) -> Outcome:
        """Everything checked before anything moves: a refused request changes nothing."""
        name, state, world = request.entity, request.state, self.entities.world
        if missing := self._known(name):
            return missing
        if state.header.frame_id not in ("", WORLD_FRAME):
            return Outcome(Result.RESULT_OPERATION_FAILED, f"frame {state.header.frame_id!r}: poses and twists are "
                                                           f"set in the world frame ({WORLD_FRAME!r} or empty)")
        p, o, t = state.pose.position, state.pose.orientation, state.twist
        position, quaternion = (p.x, p.y, p.z), (o.x, o.y, o.z, o.w)
        linear, angular = (t.linear.x, t.linear.y, t.linear.z), (t.angular.x, t.angular.y, t.angular.z)
        if request.set_pose and (refusal := pose_refusal(position, quaternion, *world.placeable_space())):
            return refusal
        if request.set_twist and not _finite(linear, angular):
            return Outcome(Result.RESULT_OPERATION_FAILED, f"the twist has NaN or inf: {list(linear)}, {list(angular)}")
        try:
            if request.set_pose:
                world.set_entity_pose(name, position, (o.w, o.x, o.y, o.z))
            if request.set_twist:
                world.set_entity_twist(name, linear, angular)
        except InputError as exc:
            return Outcome(Result.RESULT_OPERATION_FAILED, str(exc))
        return OK

    def _on_get_entity_info(self, request, response):
        missing = self._known(request.entity)
        if missing is None:
            entity = self.entities.info[request.entity]
            response.info.category.category, response.info.tags = entity.category, list(entity.tags)
            response.info.description = entity.description
        response.result = _result(missing or OK)
        return response

    def _on_get_entity_bounds(self, request, response):
        missing = self._known(request.entity)
        if missing is None:
            low, high = self.entities.world.entity_bounds(request.entity, local=True)
            response.bounds.type = Bounds.TYPE_BOX
            response.bounds.points = [_vector3(high), _vector3(low)]  # upper right, then lower left, as Bounds.msg lists them
        response.result = _result(missing or OK)
        return response

    # ------------------------------------------------------------------ the action
    def _execute(self, goal_handle):
        steps = goal_handle.request.steps
        result = SimulateSteps.Result()
        outcome = self._run_steps(steps, goal_handle)
        if goal_handle.is_cancel_requested and outcome.result == Result.RESULT_OK:
            goal_handle.canceled()
        elif outcome.result == Result.RESULT_OK:
            goal_handle.succeed()
        else:
            self.node.get_logger().warning(f"SimulateSteps goal aborted: {outcome.message}", throttle_duration_sec=1.0)
            goal_handle.abort()
        result.result = _result(outcome)
        return result

    def _run_steps(self, steps: int, goal_handle=None) -> Outcome:
        """`steps` frames, one at a time; with a goal handle, feedback after each and a stop at
        a cancel request."""
        refusal = step_refusal(self.state, steps)
        if refusal is not None:
            return refusal
        if not self._step_lock.acquire(blocking=False):
            return BUSY
        try:
            for done in range(steps):
                if goal_handle is not None and goal_handle.is_cancel_requested:
                    return Outcome(Result.RESULT_OK, f"canceled after {done} of {steps} steps")
                if self.state != PAUSED or not self._step():
                    why = "the simulation left PAUSED" if self.state != PAUSED else "a step made no frame"
                    return Outcome(Result.RESULT_OPERATION_FAILED, f"{why} after {done} of {steps} steps")
                if goal_handle is not None:
                    goal_handle.publish_feedback(SimulateSteps.Feedback(completed_steps=done + 1,
                                                                        remaining_steps=steps - done - 1))
        finally:
            self._step_lock.release()
        return OK


def _vector3(values) -> Vector3:
    return Vector3(x=float(values[0]), y=float(values[1]), z=float(values[2]))


def _result(outcome: Outcome) -> Result:
    return Result(result=outcome.result, error_message=outcome.message)
