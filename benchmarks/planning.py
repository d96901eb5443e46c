"""Closed-loop planning in MuJoCo: push or reach tasks from held-out start states, goals from real futures.

A task (--task push, the default) is a held-out episode's frame s where one object (rigid, or the
soft cube) is pushed at least --min-move metres within the next --k frames; with --task reach,
the frame s where the hand travels furthest within k frames (at least --min-move) to a point that
k steps of the single-axis behaviours could reach (L1 distance <= 0.75 x k full-speed steps, 4 cm each at 5 Hz). The goal is
frame s + k (image for the planner, positions for scoring). The world is restored at s
(`ArmWorld.set_state`) and each method acts for k steps, replanning every `replan_every` steps,
each plan looking no further than the goal's time (--horizon-to-goal). Each task kind plans with
its preset (genie_robot/plan/presets.py, as `genie-robot plan --task`); `--set key=value` changes
a setting of every kind's preset:

  planner   CEM in the world model toward the goal frame: its cost (reach: the hand's position as the
            run's state probe reads it, anchored on the real frame; push: the objects' colour-segmented
            centroids) over its vocabulary (reach: the arm's 9 discrete behaviours, each imagined as
            the latent action the adapter maps it to; push: latent actions, each executed as the
            adapter's command for it)
  random    uniformly random actions of the planner's vocabulary
  oracle    CEM with MuJoCo as its model: each candidate sequence of the 9 discrete behaviours
            (controllers.BEHAVIOURS) is simulated in a copy of the world (snapshot restored),
            cost = summed xy distance of every object to its goal position (reach: the hand's
            distance to its goal position); same horizon and
            replanning, its own population/iterations (simulating is cheap, and a push only
            registers once the hand touches the object, so it needs more samples)
  perfect model  the oracle's search over the planner's vocabulary: what the planner would
            reach if the world model were MuJoCo. The gap to the planner is the world model's,
            the gap to the oracle the vocabulary's (with `behaviours` it is the oracle)
  recorded  the episode's own commands from the restored state (how reachable the goal is when
            velocities are not restored)

Success: the pushed object ends within --tolerance of its goal position (xy); reach: the hand
within --tolerance of its goal position (xyz). Reported: success rate, mean final distance of the
pushed object (the hand), and wall time per planning step (one plan).

--ranking N measures the planner's costs instead of planning: per task, N random sequences of its
vocabulary are imagined and scored by each cost (object; state where the run has a state probe,
with how far it reads the goal frames' positions from the recorded ones), simulated in MuJoCo and
scored by the true distance; printed are each cost's rank correlation with the truth and the true
distance of the sequence it picks, beside a random pick's and the best's. A search can only beat
random actions where its cost picks better than the mean.

Usage: python benchmarks/planning.py [--task reach push] [--run out/demo/run] [--data out/demo/heldout.h5]
[--tasks 4] [--set key=value ...]. The run comes from `make demo` (all four stages, the adapter
included); reaching needs its state probe too (`genie-robot train probe`). `--quick` (CI): an
untrained tiny run with a 2-step adapter and probe on 2 generated episodes, one task of each kind
with each preset at tiny populations, ranking 3 sequences, then planning."""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genie_robot.cli import setting
from genie_robot.data.store import EpisodeStore, state_positions
from genie_robot.errors import InputError
from genie_robot.models.run import WORLD_MODELS
from genie_robot.plan.execute import object_goal, read_stored_frame, vocabulary_commands
from genie_robot.plan.imagine import Goal, GoalCost, ImaginationPlanner, state_goal
from genie_robot.plan.presets import COSTS, TASKS, task_settings
from genie_robot.plan.search import PlanConfig, receding_horizon, search
from genie_robot.sim.controllers import BEHAVIOURS, behaviour_commands
from genie_robot.sim.scene import OBJECTS, recorded_camera
from genie_robot.sim.world import ArmWorld

SOFT = {o.name for o in OBJECTS if o.kind == "soft"}
MASK_IDS = {**{o.name: o.mask_id for o in OBJECTS}, "hand": next(o.mask_id for o in OBJECTS if o.kind == "arm")}
METHODS = ("planner", "random", "perfect model", "oracle", "recorded")
MIN_MOVE = {"push": 0.04, "reach": 0.08}  # metres the pushed object (the hand) moved in the recording
QUICK = (("population", 2), ("iterations", 1), ("elites", 1), ("maskgit_steps", 1))  # --quick's search: CI's seconds
REACHABLE = 0.75  # share of k full-speed single-axis steps a reach goal may be away (the hand lags its target)


def tracked_positions(state: dict, task_kind: str) -> dict[str, np.ndarray]:
    """What a task kind scores, from a state dict (stored, or `ArmWorld.state()` live): every
    object's centre for pushes, the hand's position for reaching."""
    positions = state_positions(state)
    return {"hand": positions["hand"]} if task_kind == "reach" else {n: p for n, p in positions.items() if n != "hand"}


def task_distance(a: np.ndarray, b: np.ndarray, task_kind: str) -> float:
    """Pushes are scored on the table (xy), the hand in space (xyz)."""
    return float(np.linalg.norm((a - b) if task_kind == "reach" else (a - b)[:2]))


def shows(masks_THW, t: int, name: str) -> bool:
    """Whether frame t shows `name` (the hand: the arm); a goal the camera cannot see is no goal
    image. Stores without masks show everything."""
    return masks_THW is None or bool((masks_THW[t] == MASK_IDS[name]).any())


def find_tasks(store: EpisodeStore, k: int, min_move: float, count: int, task_kind: str, reach_per_step: float) -> list[dict]:
    """One task per episode (the start where an object, or the hand, moves most, and shows in the
    goal frame); pushes take
    soft-object pushes first up to half of the tasks, then rigid ones. A reach goal must lie within
    k steps of the 9 single-axis behaviours (L1 distance <= REACHABLE * k * reach_per_step): the
    recorded commands also move diagonally, and their fastest stretches no behaviour sequence can match."""
    found = []
    for index, episode in enumerate(store):
        state = {key: episode.read_state(key) for key in episode.state_keys}
        at = [tracked_positions({key: v[t] for key, v in state.items()}, task_kind) for t in range(episode.num_frames)]
        reach_l1 = REACHABLE * k * reach_per_step
        masks = episode.masks[:] if episode.has_masks else None
        moves = [(task_distance(at[s + k][n], at[s][n], task_kind), s, n)
                 for s in range(episode.num_frames - k) for n in at[s]
                 if (task_kind != "reach" or np.abs(at[s + k][n] - at[s][n]).sum() <= reach_l1) and shows(masks, s + k, n)]
        if not moves:
            continue
        move, start, name = max(moves)
        if move >= min_move:
            found.append({"episode": index, "start": start, "object": name, "move": move,
                          "state": {key: v[start] for key, v in state.items()},
                          "goal_state": {key: v[start + k] for key, v in state.items()},
                          "goal_frame": episode.read_frames(start + k, start + k + 1)[0],
                          "commands": episode.read_actions(start, start + k)})
    if task_kind == "reach":
        return found[:count]
    soft = [t for t in found if t["object"] in SOFT][: count // 2]
    return soft + [t for t in found if t["object"] not in SOFT][: count - len(soft)]


def simulated_costs(world, sim, commands, actions_PH, goal_positions, task_kind, render_size=None):
    """costs [P] of P action sequences simulated in `sim` from `world`'s current state: the summed
    distance of every tracked object (the hand) to its goal position; with `render_size`, also
    each sequence's final frame [P, S, S, 3] and final tracked positions (name -> [P, 3])."""
    start = world.snapshot()
    costs, frames, finals = [], [], []
    for sequence in actions_PH:
        sim.restore(start)
        for action in sequence:
            sim.step(commands[action])
        positions = tracked_positions(sim.state(), task_kind)
        costs.append(sum(task_distance(positions[n], g, task_kind) for n, g in goal_positions.items()))
        if render_size:
            frames.append(sim.render(render_size))
            finals.append(positions)
    if not render_size:
        return np.array(costs)
    return np.array(costs), np.stack(frames), {n: np.stack([f[n] for f in finals]) for n in finals[0]}


def run_task(task, method, world, sim, config, oracle_config, k, size, seed, planner=None, task_kind="push", to_goal=True):
    """Execute one method on one task; returns (distances of the pushed object or the hand to its goal after
    each action, plan seconds).
    `to_goal`: plans look no further than the goal's time (k)."""
    world.set_state(task["state"])
    goal_positions = tracked_positions(task["goal_state"], task_kind)
    rng = np.random.default_rng(seed)
    plan_seconds = []
    # What each method's actions stand for: the planner's vocabulary for the world-model methods.
    commands = {"oracle": behaviour_commands(), "recorded": task["commands"]}.get(
        method, None if planner is None else planner.commands)

    def oracle_cost(actions_PH):
        return simulated_costs(world, sim, commands, actions_PH, goal_positions, task_kind)

    def plan_fn(done):
        began = time.perf_counter()
        searched = oracle_config.within(k - done) if to_goal else oracle_config
        if method == "planner":
            actions = planner.plan(world.render(size), seed=seed + done, steps_left=k - done if to_goal else None).choices
        elif method == "oracle":
            actions = search(oracle_cost, len(BEHAVIOURS), searched, rng).actions
        elif method == "perfect model":
            actions = search(oracle_cost, len(commands), searched, rng, planner.allowed).actions
        elif method == "random":
            actions = rng.choice(np.flatnonzero(planner.allowed), config.horizon)
        else:  # recorded
            actions = np.arange(done, done + config.horizon)
        plan_seconds.append(time.perf_counter() - began)
        return actions

    distances = []

    def execute_fn(action):
        world.step(commands[action])
        now = tracked_positions(world.state(), task_kind)[task["object"]]
        distances.append(task_distance(now, goal_positions[task["object"]], task_kind))

    receding_horizon(plan_fn, execute_fn, k, config)
    return distances, plan_seconds


def quick_run_and_data(folder: Path) -> tuple[Path, Path]:
    """An untrained tiny run (its adapter and state probe trained 2 steps) and 2 MuJoCo episodes at 16 px."""
    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import save_model
    from genie_robot.sim.generate import generate_dataset
    from genie_robot.train.trainer import TrainConfig, Trainer

    data, run = folder / "heldout.h5", folder / "run"
    generate_dataset(data, episodes=2, steps=16, size=16, seed=1, progress=False)
    torch.manual_seed(0)
    for kind in ("tokenizer", "lam", "dynamics"):
        config_cls, model_cls = MODELS[kind]
        save_model(model_cls(config_cls.preset("tiny")), run / kind)
    config = TrainConfig(steps=2, batch_size=2, clip_len=4, warmup=1, lr=3e-3, sample_every=0)
    for stage in ("adapter", "probe"):
        Trainer(stage, MODELS[stage][0].preset("tiny"), [data], run, config, progress=False).train()
    return run, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="out/demo/run")
    parser.add_argument("--data", default="out/demo/heldout.h5", help="held-out MuJoCo episodes at the run's size")
    parser.add_argument("--world-model", default="video", choices=list(WORLD_MODELS),
                        help="which of the run's world models plans")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--k", type=int, default=12, help="goal = the frame k steps after the start")
    parser.add_argument("--task", nargs="+", default=["push"], choices=list(TASKS),
                        help="push an object to where it went, and/or reach the hand's position (its goal image is the "
                        "same kind of recorded future frame); one table each, each planned with its task's preset")
    parser.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting of every task's preset (genie_robot/plan/presets.py), e.g. --set horizon=4")
    parser.add_argument("--min-move", type=float, default=None,
                        help=f"metres the object (the hand) moved in the recording; default {MIN_MOVE}")
    parser.add_argument("--tolerance", type=float, default=0.03, help="success radius, metres")
    parser.add_argument("--horizon-to-goal", action=argparse.BooleanOptionalAction, default=True,
                        help="plans look no further than the goal's time (k): the last plans are shorter (the planner's, "
                        "the oracle's and the perfect model's); --no-horizon-to-goal scores every plan after the horizon")
    parser.add_argument("--oracle-population", type=int, default=32)
    parser.add_argument("--oracle-iterations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="the methods measured")
    parser.add_argument("--ranking", type=int, default=0, metavar="N",
                        help="instead of planning: per task, how well each cost of N random imagined sequences "
                        "ranks them as MuJoCo does")
    parser.add_argument("--quick", action="store_true", help="untrained tiny run, one task, tiny populations (CI)")
    args = parser.parse_args()
    if args.k < 1:
        parser.error(f"--k is how many steps after the start the goal frame lies, >= 1; got {args.k}")
    if args.ranking < 0 or args.ranking == 1:  # one sequence has no order
        parser.error(f"--ranking N scores N >= 2 random sequences a task; got {args.ranking}")
    if args.quick:
        args.run, args.data = quick_run_and_data(Path(tempfile.mkdtemp(prefix="planning_quick_")))
        args.tasks, args.k, args.min_move, args.task, args.ranking = 1, 4, 0.0, list(dict.fromkeys([*args.task, *MIN_MOVE])), 3
        args.oracle_population, args.oracle_iterations = 4, 1
        args.set = [*QUICK, *args.set]
    try:
        presets = {kind: task_settings(kind, args.set) for kind in args.task}
    except InputError as exc:
        parser.error(str(exc))
    from genie_robot.models.run import Run

    run = Path(args.run)
    trained = Run.load(run) if run.is_dir() else None
    trains = trained is not None and all(trained.has(stage) for stage in WORLD_MODELS[args.world_model])
    wm = trained.world_model(args.world_model) if trains else None
    if wm is None and args.ranking:
        parser.error(f"--ranking imagines plans: it needs a trained run with {', '.join(WORLD_MODELS[args.world_model])} and "
                     f"adapter at {run} (make demo trains the video world model's)")
    if wm is None:
        print(f"no trained run at {run} (make demo trains one): only the world-model-free rows are measured")
        methods, adapter, probe = [m for m in args.methods if m in ("oracle", "recorded")], None, None
    else:
        adapter, probe = trained.require("adapter", "the planning benchmark"), trained.probe
        methods = args.methods
        if probe is None and (kinds := [kind for kind, settings in presets.items() if settings.cost == "state"]):
            parser.error(f"the {' and '.join(kinds)} preset plans with the state cost, which reads positions with the run's "
                         f"state probe, which {run} lacks; train it with `genie-robot train probe --data "
                         f"STORE_WITH_STATE.h5 --out {run}`, or plan with --set cost=object --set target=arm --set anchor=false")
        print(f"run {run} ({wm.image_size}px, {wm.num_actions} latent actions); adapter {run}/adapter: "
              f"{int((adapter.latent_counts > 0).sum())} latent actions with a command")
    with EpisodeStore(args.data) as store:
        camera = recorded_camera(store[0])  # MuJoCo shows the planner what the store's episodes show
    world, sim = ArmWorld(camera=camera), ArmWorld(camera=camera)
    try:
        for kind, settings in presets.items():
            benchmark(kind, settings, args, methods, wm, adapter, probe, world, sim)
    finally:
        world.close()
        sim.close()


def benchmark(kind, settings, args, methods, wm, adapter, probe, world, sim) -> None:
    """Every method on the tasks of one kind; prints each task and then the summary table."""
    config = settings.search()
    oracle_config = PlanConfig("cem", config.horizon, args.oracle_population, args.oracle_iterations,
                               max(config.elites, args.oracle_population // 8), replan_every=config.replan_every)
    min_move = MIN_MOVE[kind] if args.min_move is None else args.min_move
    with EpisodeStore(args.data) as store:
        tasks = find_tasks(store, args.k, min_move, args.tasks, kind, world.max_speed * world.frame_dt)
    print(f"\n{kind}: {len(tasks)} tasks from {args.data}: " + ", ".join(
        f"ep {t['episode']} @{t['start']} {t['object']} {t['move'] * 100:.0f} cm" for t in tasks))
    print(f"planner: {settings}; oracle: population {oracle_config.population}, {oracle_config.iterations} iterations; "
          f"{'plans cut at the goal; ' if args.horizon_to_goal else ''}{torch.get_num_threads()} threads")
    print(f"success = {'hand' if kind == 'reach' else 'pushed object'} within {args.tolerance * 100:.0f} cm")
    if args.ranking:
        ranking(kind, tasks, settings, args, wm, adapter, probe, world, sim)
        if not args.quick:  # --quick measures both
            return
    rows = {m: {"distance": [], "seconds": []} for m in methods}
    started = [task_distance(tracked_positions(t["state"], kind)[t["object"]],
                             tracked_positions(t["goal_state"], kind)[t["object"]], kind) for t in tasks]
    for i, task in enumerate(tasks):
        planner = None if wm is None else ImaginationPlanner(
            wm, task_goal(task, settings.cost, settings.target, args, wm, probe), settings.cost, config,
            settings.sampling(), adapter, vocabulary_commands(settings.vocabulary))
        for method in methods:
            distances, seconds = run_task(task, method, world, sim, config, oracle_config, args.k, task["goal_frame"].shape[0],
                                          args.seed + i, planner, kind, args.horizon_to_goal)
            rows[method]["distance"].append(distances[-1])
            rows[method]["seconds"].extend(seconds)
            nearest = int(np.argmin(distances))
            print(f"  task {i} {method:>14}: {task['object']} {started[i] * 100:.1f} -> {distances[-1] * 100:.1f} cm "
                  f"(nearest {distances[nearest] * 100:.1f} cm after action {nearest + 1})", flush=True)
    print(f"\n{'method':>14} {'success':>8} {'final cm':>9} {'s/plan':>8}   ({kind}; start distance {np.mean(started) * 100:.1f} cm)")
    for method, row in rows.items():
        d = np.array(row["distance"])
        seconds = f"{np.mean(row['seconds']):8.2f}" if method in ("planner", "perfect model", "oracle") else f"{'-':>8}"
        print(f"{method:>14} {np.mean(d < args.tolerance):8.2f} {d.mean() * 100:9.1f} {seconds}")


def task_goal(task, cost, target, args, wm, probe) -> Goal:
    """A task's goal for `cost`: the positions of `target` in its goal frame (object: from its stored
    masks; state: as the run's probe reads them)."""
    if cost == "state":
        return state_goal(task["goal_frame"], target, probe)
    start, goal = (read_stored_frame(args.data, task["episode"], step, wm.image_size) for step in (task["start"], task["start"] + args.k))
    return object_goal(start, goal, target, wm)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties ranked in order of appearance); NaN when either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    rank_a, rank_b = (np.argsort(np.argsort(x, kind="stable"), kind="stable") for x in (a, b))
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


def defined_mean(values: list[float]) -> float:
    """Mean of the values that are not NaN (NaN when none is: every task's costs were constant)."""
    defined = np.asarray(values)[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def ranking(kind, tasks, settings, args, wm, adapter, probe, world, sim) -> None:
    """Does imagination order plans as MuJoCo does? Per task, --ranking random sequences of the
    planner's vocabulary (`horizon` actions from the start) are imagined in one batch and scored
    by every cost as it reads (unanchored), and simulated in MuJoCo and scored by the true distance to the goal positions.
    Printed per cost: the rank correlation with the true distance, and the true distance of the
    sequence the cost picks, beside a random pick's (the mean) and the best's. A planner can only
    beat random where its cost picks better than the mean."""
    config, sampling = settings.with_overrides([("anchor", False)]).search(), settings.sampling()  # costs as they read
    ranked = [cost for cost in COSTS if cost != "state" or probe is not None]
    picked = {cost: [] for cost in ranked}
    rho = {cost: [] for cost in ranked}
    rho_mujoco = {cost: [] for cost in ranked}
    mean, best, probe_error, imagined_error, simulated_error = [], [], [], [], []
    for i, task in enumerate(tasks):
        costs = {cost: GoalCost(task_goal(task, cost, settings.target, args, wm, probe), cost) for cost in ranked}
        if "state" in costs:  # how far the probe reads the goal frame's targets from where they were recorded
            recorded = state_positions(task["goal_state"])
            probe_error += [np.linalg.norm(p - recorded[n]) for n, p in costs["state"].goal.positions.items()]
        planner = ImaginationPlanner(wm, costs["object"].goal, "object", config, sampling, adapter,
                                     vocabulary_commands(settings.vocabulary))
        choices_PH = np.random.default_rng(args.seed + i).choice(np.flatnonzero(planner.allowed), (args.ranking, config.horizon))
        world.set_state(task["state"])
        true_P, simulated_PSSC, final_positions = simulated_costs(world, sim, planner.commands, choices_PH,
                                                                  tracked_positions(task["goal_state"], kind), kind, wm.image_size)
        imagination = wm.imagine(world.render(wm.image_size), planner.latent_of_choice[choices_PH], None, args.seed + i, sampling)
        if probe is not None:  # how far from where MuJoCo put them the probe reads the tracked positions, per sequence
            for frames, errors in ((imagination.frames[:, -1], imagined_error), (simulated_PSSC, simulated_error)):
                read = probe.predict(frames)
                errors += [task_distance(read[n][p], final_positions[n][p], kind) for n in final_positions for p in range(len(true_P))]
        mean.append(true_P.mean())
        best.append(true_P.min())
        line = []
        for name, cost in costs.items():
            imagined_P = cost(imagination.frames[:, -1])
            rho[name].append(rank_correlation(imagined_P, true_P))
            picked[name].append(true_P[np.argmin(imagined_P)])
            # The same cost on MuJoCo's own frames: its ceiling with a flawless world model.
            rho_mujoco[name].append(rank_correlation(cost(simulated_PSSC), true_P))
            line.append(f"{name} rho {rho[name][-1]:+.2f} (MuJoCo frames {rho_mujoco[name][-1]:+.2f}) "
                        f"picks {picked[name][-1] * 100:.1f}")
        print(f"  task {i}: true {best[-1] * 100:.1f}..{true_P.max() * 100:.1f} cm (mean {mean[-1] * 100:.1f}); "
              + "; ".join(line), flush=True)
    print(f"\n{'cost':>10} {'rank corr':>10} {'on MuJoCo':>10} {'picked cm':>10}   ({kind}, {args.ranking} sequences of {config.horizon} "
          f"{settings.vocabulary} actions a task; random pick {np.mean(mean) * 100:.1f} cm, best {np.mean(best) * 100:.1f} cm)")
    for name in ranked:
        print(f"{name:>10} {defined_mean(rho[name]):+10.2f} {defined_mean(rho_mujoco[name]):+10.2f} {np.mean(picked[name]) * 100:10.1f}")
    if probe_error:
        targets = ", ".join(costs["state"].goal.positions)
        print(f"state probe: the goal frames' {targets} positions read {np.mean(probe_error) * 100:.1f} cm "
              f"(median {np.median(probe_error) * 100:.1f}) from the recorded ones")
        # The world model's share of the state cost's error: where the imagined final frame puts the
        # tracked positions against where MuJoCo put them under the same actions.
        print(f"state probe after {config.horizon} actions: imagined final frames read {np.mean(imagined_error) * 100:.1f} cm "
              f"(median {np.median(imagined_error) * 100:.1f}) from where MuJoCo put the {', '.join(final_positions)}, "
              f"MuJoCo's own frames {np.mean(simulated_error) * 100:.1f} cm (median {np.median(simulated_error) * 100:.1f})")


if __name__ == "__main__":
    main()
