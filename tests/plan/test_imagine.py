"""Planning in the (untrained, tiny) world model: batching, costs, outputs and bad input."""
import numpy as np
import pytest

from genie_robot.errors import CheckpointError, InputError
from genie_robot.models.run import Run
from genie_robot.plan.imagine import Goal, GoalCost, ImaginationPlanner
from genie_robot.plan.search import PlanConfig
from genie_robot.sampling import SamplingConfig

SAMPLING = SamplingConfig(steps=2)


def bright(frames):
    """A segmenter: bright pixels are object 1."""
    return (np.asarray(frames)[..., 0] > 150).astype(np.uint8)


GOAL = Goal(targets_rc={1: (8.0, 8.0)}, segmenter=bright)  # object 1 to the middle


@pytest.fixture(scope="module")
def wm(planning_run):
    return Run.load(planning_run).world_model()


def frame(value, size=16):
    return np.full((size, size, 3), value, np.uint8)


def test_batched_rollouts_equal_single_sessions(wm):
    planner = ImaginationPlanner(wm, GOAL, "object", PlanConfig(horizon=3), SAMPLING)
    actions_PH = np.array([[0, 1, 2], [3, 3, 3], [7, 0, 5]])
    frames_PHWC = planner.imagine(frame(90)[None], None, actions_PH, seed=11)
    costs_P = planner.cost(frames_PHWC[:, -1])
    for b, actions in enumerate(actions_PH):
        single_HWC = planner.imagine(frame(90)[None], None, actions[None], seed=11 + b)
        np.testing.assert_array_equal(frames_PHWC[b], single_HWC[0])
        assert planner.cost(single_HWC[:, -1])[0] == pytest.approx(costs_P[b])


def test_plan_gives_latents_commands_and_what_it_imagined(wm, planning_run):
    adapter = Run.load(planning_run).require("adapter", "planning arm commands")
    config = PlanConfig(horizon=4, population=6, iterations=2, elites=2)
    plan = ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, adapter).plan(frame(30), seed=3)
    assert plan.latents.shape == (4,) and plan.imagined.shape == (4, 16, 16, 3)
    assert (adapter.latent_counts[plan.latents] > 0).all(), "only latent actions the adapter has a command for"
    np.testing.assert_array_equal(plan.commands, adapter.to_commands(plan.latents))
    assert len(plan.iteration_costs) == 2 and plan.cost == min(c["best"] for c in plan.iteration_costs)
    # The reported cost is the chosen sequence's own imagined outcome.
    assert GoalCost(GOAL, "object")(plan.imagined[-1:])[0] == pytest.approx(plan.cost)
    # A goal due in 2 actions: a 2-action plan, scored on its second imagined frame.
    near = ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, adapter).plan(frame(30), seed=3, steps_left=2)
    assert near.latents.shape == (2,) and near.imagined.shape == (2, 16, 16, 3)
    assert GoalCost(GOAL, "object")(near.imagined[-1:])[0] == pytest.approx(near.cost)
    # Without an adapter the plan is latent actions only.
    assert ImaginationPlanner(wm, GOAL, "object", config, SAMPLING).plan(frame(30)).commands is None


def test_plan_over_arm_commands_imagines_each_as_its_latent_action(wm, planning_run):
    adapter = Run.load(planning_run).require("adapter", "planning arm commands")
    commands = np.array([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], np.float32)
    config = PlanConfig(horizon=3, population=5, iterations=2, elites=2)
    planner = ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, adapter, commands)
    plan = planner.plan(frame(30), seed=4)
    assert set(plan.choices) <= set(range(len(commands)))
    np.testing.assert_array_equal(plan.commands, commands[plan.choices])  # executed as themselves, not as mean commands
    np.testing.assert_array_equal(plan.latents, adapter.to_latent(plan.commands))
    # What it imagined is the rollout of those latent actions (one candidate: its seed is the plan's).
    single = ImaginationPlanner(wm, GOAL, "object", PlanConfig(horizon=3, population=1, iterations=1, elites=1), SAMPLING,
                                adapter, commands)
    plan = single.plan(frame(30), seed=4)
    np.testing.assert_array_equal(plan.imagined, single.imagine(frame(30)[None], None, plan.latents[None], seed=4)[0])
    with pytest.raises(InputError, match="planning over arm commands needs the run's adapter"):
        ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, None, commands)
    with pytest.raises(InputError, match="arm commands must have"):
        ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, adapter, commands[:, :3])


def test_object_cost_is_the_pixel_distance_of_segmented_objects():
    moved = np.zeros((2, 16, 16, 3), np.uint8)
    moved[0, 4, 4], moved[1, 10, 12] = 255, 255
    costs = GoalCost(Goal(targets_rc={1: (4, 4)}, segmenter=bright), "object")(moved)
    assert costs.tolist() == pytest.approx([0.0, 10.0])
    assert GoalCost(Goal(targets_rc={1: (4, 4)}, segmenter=bright), "object")(
        np.zeros((1, 16, 16, 3), np.uint8))[0] == pytest.approx(np.hypot(16, 16))  # not visible
    # Several objects: their distances add up (object 1 = red, object 2 = green).
    segmenter = lambda f: (np.asarray(f)[..., 0] > 150) + 2 * (np.asarray(f)[..., 1] > 150)
    moved = np.zeros((2, 16, 16, 3), np.uint8)
    moved[0, 4, 4, 0], moved[1, 10, 12, 0], moved[:, 0, 0, 1] = 255, 255, 255
    costs = GoalCost(Goal(targets_rc={1: (4, 4), 2: (0, 3)}, segmenter=segmenter), "object")(moved)
    assert costs.tolist() == pytest.approx([3.0, 13.0])


def test_state_cost_is_the_distance_between_probed_positions():
    """The state cost: metres between the positions the probe reads from each frame and the targets."""
    from genie_robot.models import ProbeConfig, StateProbe

    probe = StateProbe(ProbeConfig.preset("tiny", position_names=["hand", "red_cube"])).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    read = probe.predict(frames)
    assert set(read) == {"hand", "red_cube"} and read["hand"].shape == (3, 3)
    goal = Goal(positions={"hand": read["hand"][0]}, probe=probe)
    costs = GoalCost(goal, "state")(frames)
    assert costs.tolist() == pytest.approx(np.linalg.norm(read["hand"] - read["hand"][0], axis=-1).tolist())
    assert costs[0] == pytest.approx(0, abs=1e-6) and (costs[1:] > 0).all()
    both = GoalCost(Goal(positions={"hand": read["hand"][0], "red_cube": read["red_cube"][1]}, probe=probe), "state")
    assert both(frames)[:2].tolist() == pytest.approx(
        [np.linalg.norm(read["red_cube"][0] - read["red_cube"][1]), np.linalg.norm(read["hand"][1] - read["hand"][0])], abs=1e-6)
    with pytest.raises(InputError, match="state cost needs.*genie-robot train probe"):
        GoalCost(Goal(image=frame(1)), "state")


def test_anchored_state_cost_scores_holding_still_where_the_real_frame_reads(wm, planning_run):
    """Anchored: every imagined reading is shifted by (real frame's reading - imagined "stay" rollout's), so the
    all-stay plan costs exactly the real frame's distance and other plans keep their imagined difference from it."""
    from genie_robot.models import ProbeConfig, StateProbe

    adapter = Run.load(planning_run).require("adapter", "planning arm commands")
    probe = StateProbe(ProbeConfig.preset("tiny", position_names=["hand"])).eval()
    start, target = frame(30), np.array([0.1, -0.2, 0.3], np.float32)
    commands = np.array([[0, 0, 0, 0], [1, 0, 0, 0]], np.float32)  # stay, +x
    config = PlanConfig(horizon=2, population=4, iterations=1, elites=1, anchor=True)
    planner = ImaginationPlanner(wm, Goal(positions={"hand": target}, probe=probe), "state", config, SAMPLING, adapter, commands)
    shifts = planner.anchor_shifts(start[None], np.zeros(0, np.int64), 2, seed=5)
    stay_HWC = planner.imagine(start[None], None, np.full((1, 2), planner.stay_latent), seed=5)[0, -1]
    np.testing.assert_allclose(shifts["hand"], probe.predict(start)["hand"][0] - probe.predict(stay_HWC)["hand"][0], atol=1e-6)
    here = np.linalg.norm(probe.predict(start)["hand"][0] - target)
    assert planner.cost(stay_HWC[None], shifts)[0] == pytest.approx(here, abs=1e-5)
    plan = planner.plan(start, seed=5)
    imagined = probe.predict(plan.imagined[-1])["hand"][0] + shifts["hand"]
    assert plan.cost == pytest.approx(np.linalg.norm(imagined - target), abs=1e-5)
    with pytest.raises(InputError, match="anchored readings.*cost=state and the run's adapter"):
        ImaginationPlanner(wm, GOAL, "object", config, SAMPLING, adapter)
    with pytest.raises(InputError, match="anchored readings"):
        ImaginationPlanner(wm, Goal(positions={"hand": target}, probe=probe), "state", config, SAMPLING)


def test_bad_input_says_what_to_fix(wm, tiny_run):
    with pytest.raises(InputError, match="memory of 16 frames.*horizon <= 15"):
        ImaginationPlanner(wm, GOAL, "object", PlanConfig(horizon=16), SAMPLING).plan(frame(0))
    with pytest.raises(InputError, match="object cost needs"):
        ImaginationPlanner(wm, Goal(image=frame(1)), "object")
    with pytest.raises(InputError, match="unknown cost"):
        ImaginationPlanner(wm, GOAL, "pixel")
    with pytest.raises(CheckpointError, match="planning arm commands needs a trained adapter.*genie-robot train adapter"):
        Run.load(tiny_run).require("adapter", "planning arm commands")
