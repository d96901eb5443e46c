"""ROS 2 simulation_interfaces (ros-simulation/simulation_interfaces 2.1, as Gazebo, Isaac Sim
and O3DE implement it) for a node whose world advances one frame per command, so that a
client written for those simulators drives the world model or the MuJoCo twin the same way.

  ~/get_simulator_features  (srv) GetSimulatorFeatures  what follows, as feature constants
  ~/reset_simulation        (srv) ResetSimulation       restart from the start frame / layout
  ~/get_simulation_state    (srv) GetSimulationState    PLAYING, PAUSED or STOPPED
  ~/set_simulation_state    (srv) SetSimulationState
  ~/step_simulation         (srv) StepSimulation        N frames, only while PAUSED
  ~/simulate_steps          (action) SimulateSteps      N frames with feedback, cancellable

PLAYING (the start): every command makes a frame at once, as the node's own topics always did.
PAUSED: commands wait in the node's bounded queue and each step takes the oldest, or holds
(a zero arm command; the world model's `default_action`) when none waits; leaving PAUSED drops
commands no step took. STOPPED: reset and paused, commands dropped; PLAYING leaves it, and
STOPPED -> PAUSED is refused as the standard says. A step call returns once its frames are
published. One step request runs at a time: a StepSimulation call or SimulateSteps goal that
arrives while another runs is refused (OPERATION_FAILED / goal rejected), so queued work stays
bounded and no executor thread waits behind another's request."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from simulation_interfaces.action import SimulateSteps
from simulation_interfaces.msg import Result, SimulationState, SimulatorFeatures
from simulation_interfaces.srv import (
    GetSimulationState,
    GetSimulatorFeatures,
    ResetSimulation,
    SetSimulationState,
    StepSimulation,
)

PLAYING, PAUSED, STOPPED = SimulationState.STATE_PLAYING, SimulationState.STATE_PAUSED, SimulationState.STATE_STOPPED
STATE_NAMES = {PLAYING: "PLAYING", PAUSED: "PAUSED", STOPPED: "STOPPED", SimulationState.STATE_QUITTING: "QUITTING",
               SimulationState.STATE_NO_WORLD: "NO_WORLD", SimulationState.STATE_LOADING_WORLD: "LOADING_WORLD"}
FEATURES = [SimulatorFeatures.SIMULATION_RESET, SimulatorFeatures.SIMULATION_RESET_TIME,
            SimulatorFeatures.SIMULATION_RESET_STATE, SimulatorFeatures.SIMULATION_STATE_GETTING,
            SimulatorFeatures.SIMULATION_STATE_SETTING, SimulatorFeatures.SIMULATION_STATE_PAUSE,
            SimulatorFeatures.STEP_SIMULATION_SINGLE, SimulatorFeatures.STEP_SIMULATION_MULTIPLE,
            SimulatorFeatures.STEP_SIMULATION_ACTION]
MAX_STEPS = 10_000  # per request: a bound on queued work, not on the simulation
RESETTABLE = ResetSimulation.Request.SCOPE_TIME | ResetSimulation.Request.SCOPE_STATE


@dataclass(frozen=True)
class Outcome:
    result: int
    message: str = ""


BUSY = Outcome(Result.RESULT_OPERATION_FAILED, "another step request is running; wait for its answer (or cancel "
                                                "its SimulateSteps goal) and ask again")


def transition(current: int, target: int) -> Outcome:
    """SetSimulationState from `current` to `target`, as the standard defines the outcome."""
    if target == current:
        return Outcome(SetSimulationState.Response.ALREADY_IN_TARGET_STATE, f"already {STATE_NAMES[current]}")
    if target not in (PLAYING, PAUSED, STOPPED):
        return Outcome(Result.RESULT_FEATURE_UNSUPPORTED,
                       f"state {STATE_NAMES.get(target, target)} is not supported: this simulator plays, pauses and "
                       "stops one world (stop the node to quit it)")
    if current == STOPPED and target == PAUSED:
        return Outcome(SetSimulationState.Response.INCORRECT_TRANSITION,
                       "a stopped simulation cannot be paused; set PLAYING first")
    return Outcome(Result.RESULT_OK)


def step_refusal(state: int, steps: int) -> Outcome | None:
    """Why a request for `steps` frames in `state` cannot run, or None when it can."""
    if state != PAUSED:
        return Outcome(Result.RESULT_OPERATION_FAILED,
                       f"the simulation is {STATE_NAMES[state]}: stepping needs PAUSED (SetSimulationState"
                       f"{' to PLAYING, then PAUSED' if state == STOPPED else ' to PAUSED'})")
    if not 1 <= steps <= MAX_STEPS:
        return Outcome(Result.RESULT_OPERATION_FAILED, f"steps must be 1..{MAX_STEPS}, got {steps}")
    return None


def reset_refusal(scope: int) -> Outcome | None:
    if scope in (ResetSimulation.Request.SCOPE_DEFAULT, ResetSimulation.Request.SCOPE_ALL) or not scope & ~RESETTABLE:
        return None
    return Outcome(Result.RESULT_FEATURE_UNSUPPORTED, "SCOPE_SPAWNED: this simulator spawns no entities; reset with "
                                                      "SCOPE_ALL, SCOPE_STATE or SCOPE_TIME")


class SimulationControl:
    """The services and the action on `node`, driving it through three callbacks:
    reset() restarts the world, step() makes one frame and returns whether it was published,
    and pause(paused: bool, stopped: bool) tells the node how to treat incoming commands.
    With a reentrant `callback_group` (and a multi-threaded executor) a step blocks only its
    caller; in the node's default group steps run in the executor thread, one after another,
    which suits a world that steps in milliseconds and must stay on one thread (MuJoCo's GL)."""

    def __init__(self, node, reset: Callable[[], None], step: Callable[[], bool],
                 pause: Callable[[bool, bool], None], about: str, callback_group=None):
        self.node, self._reset, self._step, self._pause, self.about = node, reset, step, pause, about
        self.state = PLAYING
        self._state_lock, self._step_lock = threading.Lock(), threading.Lock()
        group = callback_group
        self.services = [node.create_service(kind, f"~/{name}", callback, callback_group=group) for kind, name, callback in (
            (GetSimulatorFeatures, "get_simulator_features", self._on_features),
            (ResetSimulation, "reset_simulation", self._on_reset),
            (GetSimulationState, "get_simulation_state", self._on_get_state),
            (SetSimulationState, "set_simulation_state", self._on_set_state),
            (StepSimulation, "step_simulation", self._on_step))]
        self.action_server = ActionServer(node, SimulateSteps, "~/simulate_steps", self._execute,
                                          goal_callback=self._on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
                                          callback_group=group)

    def destroy(self) -> None:
        for service in self.services:
            self.node.destroy_service(service)
        self.action_server.destroy()

    # ------------------------------------------------------------------ services
    def _on_features(self, request, response):
        response.features.features = FEATURES
        response.features.custom_info = self.about
        return response

    def _on_reset(self, request, response):
        refusal = reset_refusal(request.scope)
        if refusal is None:
            self._reset()
        response.result = _result(refusal or Outcome(Result.RESULT_OK))
        return response

    def _on_get_state(self, request, response):
        response.state.state = self.state
        response.result = _result(Outcome(Result.RESULT_OK))
        return response

    def _on_set_state(self, request, response):
        target = request.state.state
        with self._state_lock:
            outcome = transition(self.state, target)
            if outcome.result == Result.RESULT_OK:
                if target == STOPPED:
                    self._reset()
                self.state = target
                self._pause(target != PLAYING, target == STOPPED)
        self.node.get_logger().info(f"simulation state {STATE_NAMES[self.state]}"
                                    + (f" ({outcome.message})" if outcome.message else ""))
        response.result = _result(outcome)
        return response

    def _on_step(self, request, response):
        response.result = _result(self._run_steps(request.steps))
        return response

    # ------------------------------------------------------------------ the action
    def _on_goal(self, goal) -> GoalResponse:
        refusal = step_refusal(self.state, goal.steps) or (BUSY if self._step_lock.locked() else None)
        if refusal is not None:
            self.node.get_logger().warning(f"SimulateSteps goal rejected: {refusal.message}", throttle_duration_sec=1.0)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle):
        steps = goal_handle.request.steps
        result = SimulateSteps.Result()
        outcome = self._run_steps(steps, goal_handle)
        if goal_handle.is_cancel_requested and outcome.result == Result.RESULT_OK:
            goal_handle.canceled()
        elif outcome.result == Result.RESULT_OK:
            goal_handle.succeed()
        else:
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
        return Outcome(Result.RESULT_OK)


def _result(outcome: Outcome) -> Result:
    return Result(result=outcome.result, error_message=outcome.message)
