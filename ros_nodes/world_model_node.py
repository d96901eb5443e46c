"""The world model as a learned simulator: a ROS 2 lifecycle node.

configure loads the run (tokenizer, dynamics, LAM if trained, action adapter if fit) and the
start frame; activate starts serving; deactivate pauses; cleanup frees the model. With
`autostart` (default) the node configures and activates itself, as `genie-robot serve` and
the launch files expect. A failed configure (missing or mismatched checkpoint, bad prompt)
is logged and leaves the node alive and unconfigured: fix the parameter and configure again.

  ~/latent_action  (sub) std_msgs/Int32          step the world with this latent action
  ~/arm_command    (sub) geometry_msgs/Twist     arm command -> latent action via RUN/adapter
  ~/prompt         (sub) sensor_msgs/Image       restart from this frame (rgb8/bgr8/mono8)
  ~/image          (pub) sensor_msgs/Image rgb8  each generated frame (and each start frame)
  ~/reset          (srv) std_srvs/Trigger        restart from the configured prompt
  ~/goal           (sub) sensor_msgs/Image       plan toward this goal image (the model's size)
                                                 from the current frame, in imagination
  ~/plan           (pub) std_msgs/Int32MultiArray        the plan's latent actions [H]
  ~/plan_commands  (pub) std_msgs/Float32MultiArray      the same as arm commands [H, 4]
                                                 (vx, vy, vz, grip) through RUN/adapter
  ~/reset_simulation, ~/step_simulation, ... and ~/simulate_steps: ROS 2 simulation_interfaces
                                                 (ros_nodes/simulation.py); paused, actions wait
                                                 in the queue and a step with none applies
                                                 `default_action`. No entity services and no
                                                 /clock: a learned simulator has frames, not
                                                 entity state or physics time, so its features
                                                 list no ENTITY_* nor SIMULATION_RESET_TIME

Planning (genie_robot.plan: CEM over action sequences, batched imagined rollouts) runs on the
generation worker and leaves the session where it was: send the plan's actions to
~/latent_action to imagine it, or its commands to a robot. It plans `plan_task` with that task's
preset (genie_robot/plan/presets.py), changed by `plan_set`; a goal image carries no object
masks, so the node plans with the state cost: the positions the run's state probe reads.

Generation runs on a worker thread, so the executor keeps answering messages, services and
parameter requests while a frame is being made. With rate_hz = 0 every accepted action makes
one frame; `action_policy` says what happens when actions come faster: `queue` keeps up to
`queue_size` in order (newer ones are dropped with a warning), `latest` keeps only the newest.
With rate_hz > 0 a clock makes one frame per tick from the newest action received since the
previous tick, or `default_action` when none came; a tick that finds the worker busy is
skipped. Memory is bounded either way. Reset and prompt discard pending actions. While the
simulation is paused the clock stops and every step of StepSimulation / SimulateSteps makes one
frame; the step services wait for their frames on their own threads (a reentrant group).
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Int32, Int32MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger

from genie_robot.errors import CheckpointError, GenieRobotError, InputError
from genie_robot.models.run import WORLD_MODELS
from genie_robot.plan.presets import TASKS
from genie_robot.sampling import DRAWS, ORDERS, SamplingConfig
from ros_nodes.common import QOS_CHOICES, Param, declare_parameters, image_message, parameter_values, qos_profile, run
from ros_nodes.conversions import image_to_rgb, twist_to_command
from ros_nodes.simulation import SimulationControl

STEP_TIMEOUT_S = 120.0  # longest wait for one stepped frame (a slow device, a long plan ahead of it)
PARAMETERS = [
    Param("checkpoint", "", "run directory holding tokenizer/, dynamics/ (and lam/, adapter/)"),
    Param("world_model", "video", "video: Genie's tokenizer + dynamics; change: the change tokenizer + its dynamics "
          "+ the LAM", choices=tuple(WORLD_MODELS)),
    Param("device", "cpu", "torch device for generation", choices=("cpu", "cuda", "auto")),
    Param("maskgit_steps", 8, "MaskGIT decoding steps per frame (fewer = faster, blurrier)", 1, 1000),
    Param("temperature", SamplingConfig.temperature, "sampling temperature; 0 = greedy", 0.0, 100.0),
    Param("unmask_order", SamplingConfig.order, "MaskGIT unmasking order: random, the most confident tokens "
          "first (better for long-trained runs, README), or annealed (MaskGIT's: random early, confident late)",
          choices=ORDERS),
    Param("token_draw", SamplingConfig.draw, "what each MaskGIT step fixes: a sample at the temperature, or per FSQ "
          "dimension the median level (steadier frames, README; needs an FSQ tokenizer); auto: median for FSQ tokens", choices=DRAWS),
    Param("history", 0, "frames the model sees, the new one included; 0 = the model's window", 0, 1024),
    Param("seed", 0, "sampling seed of each (re)started session", 0, 2**31 - 1),
    Param("prompt", "", "start frame: a PNG/JPEG path, or empty for the MuJoCo scene at scene_seed"),
    Param("scene_seed", 0, "layout seed of the MuJoCo start frame (as the MuJoCo node's seed)", 0, 2**31 - 1),
    Param("rate_hz", 0.0, "0: one frame per action; > 0: a clock making frames at this rate", 0.0, 1000.0),
    Param("default_action", 0, "latent action a clock tick applies when no action came", 0, 1023),
    Param("action_policy", "queue", "actions arriving while a frame is made: queue or keep only the latest",
          choices=("queue", "latest")),
    Param("queue_size", 16, "most actions waiting for generation (queue policy)", 1, 10000),
    Param("qos", "reliable", "QoS of every topic", choices=QOS_CHOICES),
    Param("frame_id", "camera", "header.frame_id of published images"),
    Param("autostart", True, "configure and activate on start-up"),
    Param("plan_task", "reach", "what ~/goal plans, with the settings measured best for it: reach moves the hand to "
          "where the goal image has it (needs RUN/probe and RUN/adapter)", choices=tuple(TASKS)),
    Param("plan_set", "", "settings changed from the task's preset, space-separated KEY=VALUE, e.g. "
          "'horizon=4 population=32' (keys: genie_robot/plan/presets.py)"),
]


def scene_frame(seed: int, size: int) -> np.ndarray:
    """The MuJoCo world's start frame for a layout seed, as the MuJoCo node renders it."""
    from genie_robot.sim.world import ArmWorld

    world = ArmWorld()
    try:
        world.reset(seed)
        return world.render(size)
    finally:
        world.close()


class WorldModelNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("world_model", **kwargs)
        declare_parameters(self, PARAMETERS)
        self.wm = self.adapter = self.probe = self.session = None
        self.active = False
        self._wake = threading.Condition()  # guards everything the worker and callbacks share
        self._actions: deque[int] = deque()
        self._restart: np.ndarray | None = None  # start frame the worker should restart from
        self._latest: int | None = None  # rate mode: newest action since the last tick
        self._goal: np.ndarray | None = None  # goal image the worker should plan toward
        self.frame: np.ndarray | None = None  # the newest frame: where a plan starts
        self._busy = self._stop = False
        self._worker: threading.Thread | None = None
        self._paused = self._stopped = False  # simulation_interfaces state (PLAYING at start)
        # Step requests while paused, as running counts: frames granted, taken by the worker,
        # finished (made or failed), failed; the epoch changes with every state change, so a
        # waiting step knows when its request no longer stands. One step request runs at a time.
        self._granted = self._taken = self._finished = self._failed = self._epoch = 0

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state) -> TransitionCallbackReturn:
        from genie_robot.models.inputs import as_video
        from genie_robot.models.run import Run, resolve_device
        from genie_robot.plan.presets import parse_setting, task_settings

        p = self.p = parameter_values(self, PARAMETERS)
        try:
            if not p.checkpoint:
                raise CheckpointError("parameter checkpoint is empty; set it to a run directory (checkpoint:=RUN)")
            run = Run.load(p.checkpoint, device=resolve_device(p.device))
            self.wm, self.adapter = run.world_model(p.world_model), run.adapter
            self.probe = run.probe
            if self.adapter is None:
                self.get_logger().warning(f"no action adapter in {run.path / 'adapter'}: ~/arm_command messages will be "
                                          f"dropped; train one (genie-robot train adapter --out {run.path}) or send "
                                          "~/latent_action")
            if p.default_action >= self.wm.num_actions:
                raise InputError(f"default_action {p.default_action} out of range; this model has actions "
                                 f"0..{self.wm.num_actions - 1}")
            self.sampling = SamplingConfig(steps=p.maskgit_steps, temperature=p.temperature, order=p.unmask_order,
                                           draw=p.token_draw)
            self.plan_settings = task_settings(p.plan_task, [parse_setting(pair) for pair in p.plan_set.split()])
            if self.plan_settings.cost != "state":
                raise InputError(f"planning toward a goal image needs the state cost (the {p.plan_task} preset plans with "
                                 f"{self.plan_settings.cost!r}, which reads a stored goal frame's masks): plan_task reach, "
                                 "or `genie-robot plan` toward a stored frame")
            self.memory = p.history or None
            self.start_frame = as_video(self._read_prompt(p), self.wm.image_size)[-1]
            self.session = self._start(self.start_frame)  # checks history and warms up
        except (GenieRobotError, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.wm = self.adapter = self.probe = None
            return TransitionCallbackReturn.FAILURE

        qos = qos_profile(p.qos)
        self.image_pub = self.create_lifecycle_publisher(Image, "~/image", qos)
        self._subscriptions = [
            self.create_subscription(Int32, "~/latent_action", self._on_latent_action, qos),
            self.create_subscription(Twist, "~/arm_command", self._on_arm_command, qos),
            self.create_subscription(Image, "~/prompt", self._on_prompt, qos),
            self.create_subscription(Image, "~/goal", self._on_goal, qos),
        ]
        self.plan_pub = self.create_lifecycle_publisher(Int32MultiArray, "~/plan", qos)
        self.plan_commands_pub = self.create_lifecycle_publisher(Float32MultiArray, "~/plan_commands", qos)
        self._reset_service = self.create_service(Trigger, "~/reset", self._on_reset)
        self._tick_timer = self.create_timer(1.0 / p.rate_hz, self._on_tick) if p.rate_hz > 0 else None
        self._set_paused(False, False)  # a new SimulationControl starts PLAYING
        self.simulation = SimulationControl(
            self, lambda: self._request_restart(self.start_frame), self._step_paused, self._set_paused,
            f"genie-robot learned simulator: {p.checkpoint}, one imagined {self.wm.image_size}px frame per step",
            callback_group=ReentrantCallbackGroup())
        self._stop = False
        self._worker = threading.Thread(target=self._serve, name="world_model_generation", daemon=True)
        self._worker.start()
        adapter = "with" if self.adapter is not None else "without"
        self.get_logger().info(f"configured: {p.checkpoint}, {self.wm.kind} world model ({self.wm.image_size}px, "
                               f"{self.wm.num_actions} latent actions, {adapter} action adapter) on {self.wm.device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.active = True
        self._request_restart(self.start_frame)  # clients see where the world starts
        return super().on_activate(state)  # activates the lifecycle publisher

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.active = False
        with self._wake:
            self._actions.clear()
            self._restart = self._latest = self._goal = None
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.active = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self):
        self.active = False
        self._release()  # join the worker first: torch must not be running when Python exits
        return super().destroy_node()

    def _release(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._worker is None:
            return  # never configured
        self._worker.join()
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self.destroy_service(self._reset_service)
        self.simulation.destroy()
        for publisher in (self.image_pub, self.plan_pub, self.plan_commands_pub):
            self.destroy_lifecycle_publisher(publisher)
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
        self._worker = self.wm = self.adapter = self.probe = self.session = None

    def _read_prompt(self, p) -> np.ndarray:
        if p.prompt:
            from genie_robot.media import read_image

            return read_image(p.prompt)
        return scene_frame(p.scene_seed, self.wm.image_size)

    def _start(self, frame: np.ndarray):
        return self.wm.start(frame, seed=self.p.seed, sampling=self.sampling, memory=self.memory)

    # ------------------------------------------------------------------ inputs (executor thread)
    def _accepting(self, what: str) -> bool:
        if not self.active:
            self.get_logger().warning(f"{what} dropped: the node is not active", throttle_duration_sec=2.0)
        return self.active

    def _on_latent_action(self, msg: Int32) -> None:
        if not self._accepting("latent action"):
            return
        if not 0 <= msg.data < self.wm.num_actions:
            self.get_logger().warning(f"latent action {msg.data} dropped: this model has actions "
                                   f"0..{self.wm.num_actions - 1}", throttle_duration_sec=1.0)
            return
        self._submit(msg.data)

    def _on_arm_command(self, msg: Twist) -> None:
        if not self._accepting("arm command"):
            return
        if self.adapter is None:
            self.get_logger().warning("arm command dropped: this run has no action adapter (RUN/adapter); "
                                   "send ~/latent_action instead", throttle_duration_sec=5.0)
            return
        try:
            command = twist_to_command(msg)
        except InputError as exc:
            self.get_logger().warning(f"arm command dropped: {exc}", throttle_duration_sec=1.0)
            return
        self._submit(int(self.adapter.to_latent(command)[0]))

    def _on_prompt(self, msg: Image) -> None:
        from genie_robot.models.inputs import as_video

        if not self._accepting("prompt"):
            return
        try:
            frame = as_video(image_to_rgb(msg), self.wm.image_size)[-1]
        except InputError as exc:
            self.get_logger().warning(f"prompt dropped: {exc}", throttle_duration_sec=1.0)
            return
        self._request_restart(frame)

    def _on_goal(self, msg: Image) -> None:
        from genie_robot.models.inputs import as_video

        if not self._accepting("goal"):
            return
        try:
            goal = as_video(image_to_rgb(msg), self.wm.image_size, "goal image")[-1]
        except InputError as exc:
            self.get_logger().warning(f"goal dropped: {exc}", throttle_duration_sec=1.0)
            return
        with self._wake:
            self._goal = goal
            self._wake.notify_all()

    def _on_reset(self, request, response):
        response.success = self.active
        if self.active:
            self._request_restart(self.start_frame)
            response.message = "restarting from the configured prompt; the start frame follows on ~/image"
        else:
            response.message = "the node is not active; configure and activate it first"
        return response

    def _on_tick(self) -> None:
        with self._wake:
            if self._paused:
                return
            if self._busy or self._actions or self._restart is not None:
                self.get_logger().warning(f"clock tick skipped: generation is slower than rate_hz={self.p.rate_hz}",
                                       throttle_duration_sec=5.0)
                return
            self._actions.append(self.p.default_action if self._latest is None else self._latest)
            self._latest = None
            self._wake.notify_all()

    def _submit(self, action: int) -> None:
        with self._wake:
            if self._stopped:
                self.get_logger().warning("action dropped: the simulation is STOPPED (set PLAYING)",
                                          throttle_duration_sec=1.0)
                return
            if self.p.rate_hz > 0 and not self._paused:
                self._latest = action
                return
            if self.p.action_policy == "latest":
                self._actions.clear()
            elif len(self._actions) >= self.p.queue_size:
                self.get_logger().warning(f"latent action dropped: {self.p.queue_size} actions already wait for "
                                       "generation (queue_size)", throttle_duration_sec=1.0)
                return
            self._actions.append(action)
            self._wake.notify_all()

    def _request_restart(self, frame: np.ndarray) -> None:
        with self._wake:
            self._actions.clear()
            self._restart = frame
            self._wake.notify_all()

    # ------------------------------------------------------------------ simulation_interfaces (service threads)
    def _set_paused(self, paused: bool, stopped: bool) -> None:
        """Commands no step took are dropped when the simulation leaves PAUSED (as the MuJoCo
        node does), and steps not yet taken are withdrawn."""
        with self._wake:
            if self._paused and (not paused or stopped):
                self._actions.clear()
            self._paused, self._stopped = paused, stopped
            self._granted, self._epoch = self._taken, self._epoch + 1
            self._wake.notify_all()

    def _step_paused(self) -> bool:
        """Grant the worker one frame and wait until it is published; False when it failed,
        the node stopped, the state changed or STEP_TIMEOUT_S passed (the grant is withdrawn
        unless the worker already took it)."""
        with self._wake:
            if not self.active:
                return False
            self._granted += 1
            mine, failed, epoch = self._granted, self._failed, self._epoch
            self._wake.notify_all()
            self._wake.wait_for(lambda: self._finished >= mine or self._stop or self._epoch != epoch, STEP_TIMEOUT_S)
            if self._finished < mine:
                self._granted = self._taken
                return False
            return self._failed == failed

    def request_stop(self) -> None:
        """Called by `run` on SIGINT/SIGTERM before the executor waits for its threads: the
        worker ends and waiting steps return."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()

    # ------------------------------------------------------------------ generation (worker thread)
    def _serve(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stop or self._restart is not None or self._goal is not None
                                    or (self._taken < self._granted if self._paused else bool(self._actions)))
                if self._stop:
                    return
                restart, self._restart = self._restart, None
                goal = None
                if restart is None:  # a pending restart goes first, so a goal plans from the new start
                    goal, self._goal = self._goal, None
                action, granted = None, restart is None and goal is None and self._paused
                if granted:  # a step request: the oldest waiting action, or hold with default_action
                    self._taken += 1
                    action = self._actions.popleft() if self._actions else self.p.default_action
                elif restart is None and goal is None:
                    action = self._actions.popleft()
                self._busy = True
            try:
                if goal is not None:
                    self._plan(goal)
                    continue
                if restart is not None:
                    self.session = self._start(restart)
                    frame = self.session.prompt_frames[-1]  # the start as the tokenizer keeps it
                else:
                    frame = self.session.step(action)
            except Exception as exc:  # keep serving whatever one request did
                detail = str(exc) if isinstance(exc, GenieRobotError) else f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"generation failed: {detail}")
                frame = None
            finally:
                with self._wake:
                    self._busy = False
            published = frame is not None and self.active
            if frame is not None:
                self.frame = frame
            if published:
                self.image_pub.publish(image_message(frame, self.get_clock().now().to_msg(), self.p.frame_id))
            if granted:
                with self._wake:
                    self._finished += 1
                    self._failed += not published
                    self._wake.notify_all()

    def _plan(self, goal: np.ndarray) -> None:
        """Plan from the newest frame toward `goal`; publish latent actions (and commands)."""
        from genie_robot.plan.execute import vocabulary_commands
        from genie_robot.plan.imagine import ImaginationPlanner, state_goal

        settings = self.plan_settings
        try:
            planner = ImaginationPlanner(self.wm, state_goal(goal, settings.target, self.probe), settings.cost,
                                         settings.search(), settings.sampling(), self.adapter,
                                         vocabulary_commands(settings.vocabulary))
            plan = planner.plan(self.frame, seed=self.p.seed)
        except GenieRobotError as exc:
            self.get_logger().error(f"planning failed: {exc}")
            return
        self.get_logger().info(f"plan {plan.latents.tolist()} ({plan.cost:.4f} {settings.cost} distance as "
                               f"imagined, {plan.seconds:.1f} s)")
        if not self.active:
            return
        self.plan_pub.publish(Int32MultiArray(data=plan.latents.tolist()))
        if plan.commands is not None:
            msg = Float32MultiArray(data=plan.commands.ravel().tolist())
            msg.layout.dim = [MultiArrayDimension(label="step", size=len(plan.commands), stride=plan.commands.size),
                              MultiArrayDimension(label="command", size=plan.commands.shape[1],
                                                  stride=plan.commands.shape[1])]
            self.plan_commands_pub.publish(msg)


def _autostart(node: WorldModelNode) -> None:
    if node.get_parameter("autostart").value:
        node.trigger_configure()
        if node.wm is not None:
            node.trigger_activate()


def main(args=None) -> int:
    return run(WorldModelNode, args, start=_autostart, threads=4)


if __name__ == "__main__":
    raise SystemExit(main())
