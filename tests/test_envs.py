"""The Gymnasium environments: the world model and its MuJoCo twin, checked by Gymnasium's own
environment checker, on the tiny run and MuJoCo episodes at twice its resolution."""
import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import genie_robot.envs  # noqa: F401  (registers the environments)
from genie_robot.errors import CheckpointError, InputError


@pytest.mark.parametrize("world_model, memory", [("video", 16), ("change", 17)])
@pytest.mark.parametrize("action_space", ["latent", "arm"])
def test_world_model_env_passes_gymnasiums_checker(change_run, mujoco_store, action_space, world_model, memory):
    env = gymnasium.make("genie_robot/WorldModel-v0", run=change_run, data=mujoco_store, action_space=action_space,
                         maskgit_steps=1, render_mode="rgb_array", world_model=world_model)
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=3)
    assert obs.shape == (16, 16, 3) and obs.dtype == np.uint8 and {"episode", "step"} <= set(info)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)  # seeded reset: the same start
    truncated, steps = False, 0
    while not truncated:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert reward == 0.0 and not terminated
    assert steps == memory - 1  # the model's memory, one frame of it the prompt
    np.testing.assert_array_equal(env.render(), obs)
    env.close()


def test_mujoco_twin_has_the_same_spaces_and_a_goal_reward(planning_run, mujoco_store):
    goal = np.full((32, 32, 3), 128, np.uint8)  # larger than the model: downscaled as in training
    twin = gymnasium.make("genie_robot/MuJoCoArm-v0", run=planning_run, data=mujoco_store, goal=goal)
    learned = gymnasium.make("genie_robot/WorldModel-v0", run=planning_run, data=mujoco_store, action_space="arm")
    assert twin.observation_space == learned.observation_space and twin.action_space == learned.action_space
    check_env(twin.unwrapped)
    obs, _ = twin.reset(seed=0)
    _, reward, _, _, _ = twin.step(np.array([0.5, 0.0, 0.0, 0.0], np.float32))
    assert -1.0 <= reward < 0.0
    latent_twin = gymnasium.make("genie_robot/MuJoCoArm-v0", run=planning_run, data=mujoco_store, action_space="latent")
    latent_twin.reset(seed=0)
    assert latent_twin.step(0)[0].shape == (16, 16, 3)  # a latent action runs as its mean command
    for env in (twin, learned, latent_twin):
        env.close()


def test_bad_environment_arguments(planning_run, tiny_run, mujoco_store):
    with pytest.raises(InputError, match="action_space"):
        gymnasium.make("genie_robot/WorldModel-v0", run=planning_run, data=mujoco_store, action_space="joints")
    with pytest.raises(CheckpointError, match="genie-robot train adapter"):
        gymnasium.make("genie_robot/WorldModel-v0", run=tiny_run, data=mujoco_store, action_space="arm")
    env = gymnasium.make("genie_robot/WorldModel-v0", run=planning_run, data=mujoco_store, maskgit_steps=1)
    env.reset(seed=0)
    with pytest.raises(InputError, match="outside the action space"):
        env.step(99)


def test_vector_env_steps_its_rows_in_one_batched_session(planning_run, mujoco_store):
    envs = gymnasium.make_vec("genie_robot/WorldModel-v0", num_envs=3, vectorization_mode="vector_entry_point",
                              run=planning_run, data=mujoco_store, maskgit_steps=1)
    obs, infos = envs.reset(seed=5)
    assert obs.shape == (3, 16, 16, 3) and envs.observation_space.contains(obs) and len(infos["episode"]) == 3
    np.testing.assert_array_equal(obs, envs.reset(seed=5)[0])  # seeded
    for _ in range(15):
        obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs) and rewards.shape == (3,)
    assert truncated.all() and not terminated.any()  # the memory is full: every row ends together
    obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())  # next-step autoreset
    assert not truncated.any() and (rewards == 0).all()
    envs.close()


def run_without(stage, run, tmp_path):
    """`run`'s trained stages, linked, except `stage`."""
    from genie_robot.models.run import STAGES

    lacking = tmp_path / f"run_without_{stage}"
    lacking.mkdir()
    for kept in STAGES:
        if kept != stage and (run / kept).exists():
            (lacking / kept).symlink_to((run / kept).resolve())
    return lacking


# What each registered environment cannot do without, by action space: the world model always,
# and the adapter where it translates the actions.
NEEDS = {("genie_robot/WorldModel-v0", "latent"): {"tokenizer", "dynamics"},
         ("genie_robot/WorldModel-v0", "arm"): {"tokenizer", "dynamics", "adapter"},
         ("genie_robot/MuJoCoArm-v0", "latent"): {"tokenizer", "dynamics", "adapter"},
         ("genie_robot/MuJoCoArm-v0", "arm"): {"tokenizer", "dynamics"}}


@pytest.mark.parametrize("stage", ["tokenizer", "lam", "dynamics", "adapter", "probe"])
def test_every_environment_runs_or_names_the_missing_stage(planning_run, mujoco_store, tmp_path, stage):
    """With a run lacking one stage, each registered environment and action space either steps, or
    refuses with the command that trains the stage (never an AttributeError deep inside)."""
    registered = {name for name in gymnasium.registry if name.startswith("genie_robot/")}
    assert registered == {name for name, _ in NEEDS}
    run = run_without(stage, planning_run, tmp_path)
    for (name, action_space), needs in NEEDS.items():
        arguments = dict(run=run, data=mujoco_store, action_space=action_space)
        if stage in needs:
            with pytest.raises(CheckpointError, match=f"genie-robot train {stage} "):
                gymnasium.make(name, **arguments)
            continue
        env = gymnasium.make(name, **arguments)
        env.reset(seed=0)
        assert env.step(env.action_space.sample())[0].shape == (16, 16, 3)
        env.close()
