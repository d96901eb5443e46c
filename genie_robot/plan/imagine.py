"""Planning in imagination: score latent-action sequences by rolling them out in the world model.

One CEM iteration is one batched session (batch = population) started from the prompt, so
the rows share the prompt's encoding and cached keys/values (built once, then copied per row);
each row gets its own MaskGIT seed. Starting a session is one encode and one cached pass over
the prompt, small beside the `horizon` generated steps that follow, so sessions are started
fresh per iteration rather than forked from a kept one.

Costs compare the final imagined frame with the goal by where things are in it, not by how the
whole frame looks (the arm's pose dominates a frame, so whole-frame distances do not rank plans
as the simulator does; docs/experiments/planning_settings.md):
  object:    summed distance in pixels between objects' centroids, segmented from the imagined
             frame by colour, and their target positions (the image diagonal for one not
             visible): targets for the movable objects reward moving them.
  state:     summed distance in metres between the positions the run's state probe reads from
             the imagined frame and from the goal frame (the hand's, or objects'): the hand
             where the arm's colour centroid only loosely follows it. Anchored (PlanConfig.anchor),
             each reading is shifted by (real current frame's reading - imagined "stay" rollout's):
             the probe reads a blurred imagined arm off, much the same way for every plan from one
             frame; the shift takes that bias out, so holding still is scored exactly where the arm is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from genie_robot.errors import InputError
from genie_robot.eval.physics import ColourSegmenter, centroids, far_ends
from genie_robot.models.adapter import ActionAdapter
from genie_robot.models.inputs import as_video, check_actions
from genie_robot.models.state_probe import StateProbe
from genie_robot.models.world_model import Simulator
from genie_robot.plan.presets import COSTS
from genie_robot.plan.search import PlanConfig, search
from genie_robot.sampling import SamplingConfig


@dataclass
class Goal:
    """Target positions (row, col) in pixels by object mask id (cost object, through `segmenter`),
    or in metres by name (cost state, read through `probe`); `image`, the goal frame uint8
    [S, S, 3], is what a plan's video shows."""

    image: np.ndarray | None = None
    targets_rc: dict[int, tuple[float, float]] | None = None
    segmenter: ColourSegmenter | None = None
    positions: dict[str, np.ndarray] | None = None
    probe: StateProbe | None = None
    # object id -> (row, col) of its mount: the object's point is its far end from there (the arm's hand), not its centroid
    far_end_from: dict[int, tuple[float, float]] = field(default_factory=dict)


class GoalCost:
    """costs [P] of imagined final frames [P, S, S, 3]."""

    def __init__(self, goal: Goal, kind: str):
        if kind not in COSTS:
            raise InputError(f"unknown cost {kind!r}; choose from {', '.join(COSTS)}")
        self.goal, self.kind = goal, kind
        if kind == "object" and (not goal.targets_rc or goal.segmenter is None):
            raise InputError("the object cost needs target (row, col) positions by object id and a segmenter; "
                             "take the goal from a stored MuJoCo frame (FILE.h5:EPISODE:STEP, it has masks)")
        if kind == "state" and (not goal.positions or goal.probe is None):
            raise InputError("the state cost needs target positions by name and the run's state probe; "
                             "train one with `genie-robot train probe --data STORE_WITH_STATE.h5 --out RUN`")

    def __call__(self, frames_PHWC: np.ndarray, shifts: dict | None = None) -> np.ndarray:
        """`shifts` (state cost): metres added to the readings by name (`anchor_shifts`)."""
        if self.kind == "state":
            read = self.goal.probe.predict(frames_PHWC)
            shifts = shifts or {}
            return sum(np.linalg.norm(read[name] + shifts.get(name, 0.0) - target, axis=-1)
                       for name, target in self.goal.positions.items())
        masks_PHW = self.goal.segmenter(frames_PHWC)
        missing = float(np.hypot(*frames_PHWC.shape[1:3]))
        return sum(np.nan_to_num(np.linalg.norm(object_points(masks_PHW, object_id, self.goal.far_end_from) - np.asarray(target_rc),
                                                axis=-1), nan=missing)
                   for object_id, target_rc in self.goal.targets_rc.items())


def state_goal(goal_image: np.ndarray, name: str, probe) -> Goal:
    """Targets = the positions the run's state probe reads from the goal image: the hand's (`hand`),
    one object's (`name`), every object's (`all`), or those and the hand's (`scene`)."""
    if probe is None:
        raise InputError("the state cost reads positions with the run's state probe, which this run lacks; train it with "
                         "`genie-robot train probe --data STORE_WITH_STATE.h5 --out RUN`, or choose another --cost")
    objects = [n for n in probe.config.position_names if n != "hand"]
    groups = {"all": objects, "scene": list(probe.config.position_names), "hand": ["hand"]}
    if name not in groups and name not in objects:
        raise InputError(f"the run's state probe reads no {name!r}; choose from {', '.join([*groups, *objects])}")
    goal_image = as_video(goal_image, probe.config.image_size, "goal image")[-1]
    read = probe.predict(goal_image)
    return Goal(image=goal_image, positions={n: read[n][0] for n in groups.get(name, [name])}, probe=probe)


def object_points(masks_PHW: np.ndarray, object_id: int, far_end_from: dict) -> np.ndarray:
    """[P, 2] where each mask has the object: its far end from its mount where `far_end_from`
    names one (the arm's hand), else its centroid."""
    if object_id in far_end_from:
        return far_ends(masks_PHW, object_id, far_end_from[object_id])
    return centroids(masks_PHW, object_id)


@dataclass
class Plan:
    choices: np.ndarray            # int64 [H] indices into the planner's vocabulary (`ImaginationPlanner.commands`)
    latents: np.ndarray            # int64 [H] the latent actions imagined
    commands: np.ndarray | None    # float32 [H, C] the arm commands to execute (None without an adapter)
    imagined: np.ndarray           # uint8 [H, S, S, 3] the chosen sequence's imagined frames
    cost: float                    # its cost as imagined
    iteration_costs: list = field(default_factory=list)
    seconds: float = 0.0


class ImaginationPlanner:
    """Plans toward `goal` in the world model over one of two vocabularies:
      latent actions (default): with an adapter, only those it saw while fitting, each executed
          as the adapter's command for it (`ActionAdapter.to_commands`);
      arm commands (`commands` [K, C], needs the adapter): the robot's own command set, each
          imagined as the latent action the adapter maps it to (`to_latent`) and executed as
          itself; commands that map to one latent action look alike to the planner."""

    def __init__(self, wm: Simulator, goal: Goal, cost: str, config: PlanConfig = PlanConfig(),
                 sampling: SamplingConfig = SamplingConfig(steps=2), adapter: ActionAdapter | None = None,
                 commands: np.ndarray | None = None):
        self.wm, self.config, self.sampling = wm, config, sampling
        self.cost = GoalCost(goal, cost)
        if config.anchor and (cost != "state" or adapter is None):
            raise InputError("anchored readings (anchor) shift the state cost by the imagined \"stay\" rollout: they need "
                             "cost=state and the run's adapter, which names the latent action of the do-nothing command")
        if config.anchor:
            self.stay_latent = int(adapter.to_latent(np.zeros(adapter.config.command_dim, np.float32))[0])
        if commands is not None:
            if adapter is None:
                raise InputError("planning over arm commands needs the run's adapter (`genie-robot train adapter`) "
                                 "to imagine each command as a latent action")
            self.commands = adapter.check_commands(commands)
            self.latent_of_choice = adapter.to_latent(self.commands)
            self.allowed = np.ones(len(self.commands), bool)
        else:
            self.latent_of_choice = np.arange(wm.num_actions)
            self.commands = None if adapter is None else adapter.to_commands(self.latent_of_choice)
            self.allowed = None if adapter is None else adapter.latent_counts.cpu().numpy() > 0

    def imagine(self, prompt, prompt_actions, actions_PH: np.ndarray, seed: int):
        """Imagined frames [P, H, S, S, 3] of P sequences."""
        return self.wm.imagine(prompt, actions_PH, prompt_actions, seed, self.sampling).frames

    def plan(self, prompt, prompt_actions=None, seed: int = 0, steps_left: int | None = None) -> Plan:
        """Plan from 1..memory-1 prompt frames (uint8 [H, W, 3] or [T, H, W, 3]); with
        `steps_left` (actions until the goal is due), no further than that (`PlanConfig.within`)."""
        began = time.perf_counter()
        config = self.config if steps_left is None else self.config.within(steps_left)
        prompt = as_video(prompt, self.wm.image_size)
        if len(prompt) > 1 and prompt_actions is None:
            prompt_actions = self.wm.infer_actions(prompt)  # once, not in every iteration's session
        prompt_actions = np.zeros(0, np.int64) if prompt_actions is None else check_actions(prompt_actions, self.wm.num_actions)
        kept = min(len(prompt), self.wm.max_memory - 1)
        if kept + config.horizon > self.wm.max_memory:
            raise InputError(f"a horizon of {config.horizon} after {kept} prompt frame(s) is longer than the model's "
                             f"memory of {self.wm.max_memory} frames; plan with horizon <= {self.wm.max_memory - kept} "
                             "(--set horizon=N) and replan (replan_every) to go further")
        imagined = []
        shifts = self.anchor_shifts(prompt, prompt_actions, config.horizon, seed) if config.anchor else None

        def cost_fn(choices_PH: np.ndarray) -> np.ndarray:
            frames_PHSSC = self.imagine(prompt, prompt_actions, self.latent_of_choice[choices_PH],
                                        seed + len(imagined) * len(choices_PH))
            imagined.append(frames_PHSSC)
            return self.cost(frames_PHSSC[:, -1], shifts)

        result = search(cost_fn, len(self.latent_of_choice), config, np.random.default_rng(seed), self.allowed)
        iteration, row = result.best_row
        commands = None if self.commands is None else self.commands[result.actions]
        return Plan(result.actions, self.latent_of_choice[result.actions], commands, imagined[iteration][row],
                    result.cost, result.iteration_costs, time.perf_counter() - began)

    def anchor_shifts(self, prompt, prompt_actions, horizon: int, seed: int) -> dict[str, np.ndarray]:
        """Metres by name that carry the imagined "stay" rollout's final reading onto the real current frame's."""
        stay_frames_PHSSC = self.imagine(prompt, prompt_actions, np.full((1, horizon), self.stay_latent), seed)
        read = self.cost.goal.probe.predict(np.stack([prompt[-1], stay_frames_PHSSC[0, -1]]))
        return {name: read[name][0] - read[name][1] for name in self.cost.goal.positions}
