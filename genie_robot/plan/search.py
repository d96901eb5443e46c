"""Search over discrete action sequences as pure functions: the world is a cost callable.

cost_fn(actions [P, H] int64) -> costs [P] scores a population of candidate sequences at once
(one batched imagined rollout, or P simulator rollouts). Two searches share one loop:

  cem:       cross-entropy method over a categorical distribution per time step. Each
             iteration samples `population` sequences, keeps the `elites` cheapest and refits
             the distribution to their action frequencies, blended with the old one
             (`smoothing` of the old) so one lucky draw cannot zero out an action for good.
             The best sequence so far is re-entered each iteration (it may be re-scored
             differently: imagined rollouts are stochastic).
  shooting:  the same budget of uniform random sequences, the cheapest kept (the baseline).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from genie_robot.errors import InputError

METHODS = ("cem", "shooting")


@dataclass(frozen=True)
class PlanConfig:
    method: str = "cem"
    horizon: int = 8         # latent actions per plan
    population: int = 16     # sequences scored per iteration (one batched rollout)
    iterations: int = 3
    elites: int = 4
    smoothing: float = 0.2   # weight of the previous distribution in the CEM refit
    replan_every: int = 0    # actions executed before planning again; 0 = the whole horizon
    # State cost only: read imagined positions relative to the imagined "stay" rollout, placed where the real
    # current frame reads, so imagination supplies the motion and the real frame the position (ImaginationPlanner.plan).
    anchor: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"unknown planner {self.method!r}; choose {' or '.join(METHODS)}")
        for name in ("horizon", "population", "iterations", "elites"):
            if getattr(self, name) < 1:
                raise InputError(f"planner {name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.population:
            raise InputError(f"elites ({self.elites}) cannot exceed the population ({self.population})")
        if not 0 <= self.smoothing < 1:
            raise InputError(f"CEM smoothing must lie in [0, 1), got {self.smoothing}")
        if not 0 <= self.replan_every <= self.horizon:
            raise InputError(f"replan_every must be 1..horizon ({self.horizon}), or 0 for the whole horizon; "
                             f"got {self.replan_every}")

    @property
    def execute_per_plan(self) -> int:
        return self.replan_every or self.horizon

    def within(self, steps_left: int) -> PlanConfig:
        """The same search looking no further than `steps_left` actions: a goal due sooner than the
        horizon is scored at its own time, not after actions that will never be executed."""
        horizon = max(1, min(self.horizon, steps_left))
        return replace(self, horizon=horizon, replan_every=min(self.replan_every, horizon))


@dataclass
class SearchResult:
    actions: np.ndarray            # int64 [H], the cheapest sequence scored
    cost: float                    # its cost when it was scored
    best_row: tuple[int, int]      # (iteration, population row) where it was scored
    iteration_costs: list = field(default_factory=list)  # per iteration {"best", "mean"}
    probs: np.ndarray | None = None  # float [H, A], CEM's final distribution


def sample_sequences(probs_HA: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` sequences [count, H], step h drawn from probs_HA[h] (inverse CDF, vectorised)."""
    cdf_HA = np.cumsum(probs_HA, axis=-1)
    u_PH1 = rng.random((count, len(probs_HA), 1)) * cdf_HA[:, -1:]  # rescale: cumsum may end at 1 - eps
    return (u_PH1 >= cdf_HA[None]).sum(-1).clip(max=probs_HA.shape[1] - 1).astype(np.int64)


def search(cost_fn: Callable[[np.ndarray], np.ndarray], num_actions: int, config: PlanConfig,
           rng: np.random.Generator, allowed: np.ndarray | None = None) -> SearchResult:
    """The cheapest sequence found by `config.method`; `allowed` (bool [A]) limits the actions."""
    allowed = np.ones(num_actions, bool) if allowed is None else np.asarray(allowed, bool)
    if allowed.shape != (num_actions,) or not allowed.any():
        raise InputError(f"allowed actions must be a bool mask of {num_actions} with at least one True")
    H, P = config.horizon, config.population
    probs_HA = np.broadcast_to(allowed / allowed.sum(), (H, num_actions)).copy()
    best: SearchResult | None = None
    history = []
    for iteration in range(config.iterations):
        actions_PH = sample_sequences(probs_HA, P, rng)
        if config.method == "cem" and best is not None:
            actions_PH[0] = best.actions
        costs_P = np.asarray(cost_fn(actions_PH), dtype=np.float64)
        if costs_P.shape != (P,):
            raise ValueError(f"cost_fn must return one cost per sequence ({P}), got shape {costs_P.shape}")
        row = int(np.argmin(costs_P))
        if best is None or costs_P[row] < best.cost:
            best = SearchResult(actions_PH[row].copy(), float(costs_P[row]), (iteration, row))
        history.append({"best": float(costs_P.min()), "mean": float(costs_P.mean())})
        if config.method == "cem":
            elites_EH = actions_PH[np.argsort(costs_P, kind="stable")[: config.elites]]
            freq_HA = np.stack([np.bincount(column, minlength=num_actions) for column in elites_EH.T]) / len(elites_EH)
            probs_HA = config.smoothing * probs_HA + (1 - config.smoothing) * freq_HA
    best.iteration_costs = history
    best.probs = probs_HA if config.method == "cem" else None
    return best


def receding_horizon(plan_fn: Callable[[int], np.ndarray], execute_fn: Callable[[int], None], steps: int,
                     config: PlanConfig) -> list[np.ndarray]:
    """Model-predictive control: plan `horizon` actions, execute the first `replan_every`,
    plan again from where the world is, until `steps` actions are executed.

    plan_fn(step) -> actions [H] planned from the world's state at `step`; execute_fn(action)
    advances the world. Returns the plans made."""
    plans, done = [], 0
    while done < steps:
        plans.append(plan := np.asarray(plan_fn(done)))
        for action in plan[: min(config.execute_per_plan, steps - done)]:
            execute_fn(int(action))
            done += 1
    return plans
