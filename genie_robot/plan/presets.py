"""Planning tasks and their settings: one preset per task, every setting of a plan in one place.

`genie-robot plan --task reach|push`, `benchmarks/planning.py --task` and the ROS world model
node's `plan_task` start from the preset of their task: the settings measured best for it on
held-out goals (docs/experiments/planning_settings.md says what was measured and why each was
chosen). Any setting can be changed by name (`--set key=value`, `with_overrides`); the names are
the fields of `PlanSettings`.

This module imports neither torch nor MuJoCo, so the CLI can offer its names while it parses."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genie_robot.errors import InputError

COSTS = ("object", "state")  # plan/imagine.py's GoalCost
VOCABULARIES = ("latent", "behaviours")  # plan/execute.py's vocabulary_commands
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


@dataclass(frozen=True)
class PlanSettings:
    """Everything a plan needs besides its run, start and goal."""

    # The search (plan/search.py's PlanConfig).
    method: str = "cem"
    horizon: int = 6
    population: int = 16
    iterations: int = 3
    elites: int = 4
    smoothing: float = 0.2
    replan_every: int = 3
    anchor: bool = False
    # What a plan is scored by and searched over (plan/imagine.py, plan/execute.py).
    cost: str = "object"  # object: positions segmented by colour; state: positions the run's state probe reads
    target: str = "all"  # what the cost moves to where the goal has it (execute.object_goal, imagine.state_goal)
    vocabulary: str = "latent"
    # How imagination samples (sampling/maskgit.py's SamplingConfig).
    maskgit_steps: int = 2
    temperature: float = 0.5
    schedule: str = "cosine"
    order: str = "confidence"
    draw: str = "auto"

    def __post_init__(self):
        if self.cost not in COSTS:
            raise InputError(f"unknown planning cost {self.cost!r}; choose from {', '.join(COSTS)}")
        if self.vocabulary not in VOCABULARIES:
            raise InputError(f"unknown planning vocabulary {self.vocabulary!r}; choose from {', '.join(VOCABULARIES)}")
        if self.anchor and self.cost != "state":
            raise InputError("anchor shifts the state cost's readings; it needs cost=state (or set anchor=false)")
        self.search()
        self.sampling()

    def search(self):
        from genie_robot.plan.search import PlanConfig

        return PlanConfig(self.method, self.horizon, self.population, self.iterations, self.elites, self.smoothing,
                          self.replan_every, self.anchor)

    def sampling(self):
        from genie_robot.sampling import SamplingConfig

        try:
            return SamplingConfig(self.maskgit_steps, self.temperature, self.schedule, self.order, self.draw)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def with_overrides(self, pairs) -> PlanSettings:
        """These settings with (name, value) pairs replaced (`parse_setting` reads one from text)."""
        return dataclasses.replace(self, **dict(pairs))


# What each task's preset changes from the defaults above (the reasons: docs/experiments/planning_settings.md).
TASKS = {
    # The hand where the goal has it, read by the state probe; a real-frame anchor on the readings;
    # two of the arm's behaviours ahead, replanned after every one.
    "reach": dict(cost="state", target="hand", vocabulary="behaviours", anchor=True, horizon=2, replan_every=1),
    # The movable objects where the goal frame has them, by colour; latent actions, replanned every 3.
    "push": dict(cost="object", target="all", vocabulary="latent", horizon=6, replan_every=3),
}


def task_settings(task: str, overrides=()) -> PlanSettings:
    """The preset of `task` with `overrides` ((name, value) pairs, e.g. from `parse_setting`)."""
    if task not in TASKS:
        raise InputError(f"unknown planning task {task!r}; choose from {', '.join(TASKS)}")
    return PlanSettings(**TASKS[task]).with_overrides(overrides)


def parse_setting(text: str) -> tuple[str, object]:
    """`key=value` -> (key, value typed as the setting is): what `--set` takes."""
    fields = {f.name: f for f in dataclasses.fields(PlanSettings)}
    key, equals, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not equals or key not in fields:
        raise InputError(f"{text!r}: give a planning setting as KEY=VALUE with KEY one of {', '.join(fields)}")
    kind = type(fields[key].default)
    if kind is bool:
        if value.lower() not in BOOLEANS:
            raise InputError(f"{key}={value}: {key} is true or false")
        return key, BOOLEANS[value.lower()]
    try:
        return key, kind(value)
    except ValueError:
        raise InputError(f"{key}={value}: {key} takes {'an integer' if kind is int else 'a number'}") from None
