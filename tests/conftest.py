import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np
import pytest
import torch

from genie_robot.data import EpisodeWriter


def indexed_episode(length: int, size: int = 8, action_dim: int = 2, offset: int = 0):
    """Frames whose pixels equal their frame index, and actions[t] = t: alignment is visible."""
    frames = np.broadcast_to(
        ((np.arange(length) + offset) % 256).astype(np.uint8)[:, None, None, None], (length, size, size, 3)
    ).copy()
    actions = np.repeat(np.arange(length - 1, dtype=np.float32)[:, None], action_dim, axis=1) + offset
    return frames, actions


@pytest.hookimpl(trylast=True)  # after `-m` has deselected what this run does not take
def pytest_collection_modifyitems(config, items):
    """TensorFlow and MuJoCo's EGL renderer segfault when both are loaded into one process, in
    either order. Tests that import TensorFlow (RLDS) therefore run in their own pytest process
    (`make test` runs `pytest -m tensorflow` separately); in a mixed run they are skipped."""
    marked = [item for item in items if item.get_closest_marker("tensorflow")]
    if marked and len(marked) < len(items):
        skip = pytest.mark.skip(reason="TensorFlow tests run in their own process: pytest -m tensorflow")
        for item in marked:
            item.add_marker(skip)


@pytest.fixture
def make_store(tmp_path):
    """make_store(name, lengths, ...) -> path of a store with indexed episodes."""

    def make(name="store.h5", lengths=(20, 30), size=8, action_dim=2, with_actions=True, offset=0):
        path = tmp_path / name
        with EpisodeWriter(path) as writer:
            for length in lengths:
                frames, actions = indexed_episode(length, size, action_dim, offset)
                writer.append(
                    frames,
                    actions=actions if with_actions else None,
                    action_names=[f"a{i}" for i in range(action_dim)] if with_actions else None,
                    source="test",
                    fps=10,
                )
        return path

    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """An untrained tiny run directory (tokenizer, lam, dynamics at 16x16): the world model's
    mechanics do not need trained weights."""
    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import save_model

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    for kind in ("tokenizer", "lam", "dynamics"):  # no adapter: it is fit, not trained from a preset
        config_cls, model_cls = MODELS[kind]
        save_model(model_cls(config_cls.preset("tiny")), run / kind)
    return run


@pytest.fixture(scope="session")
def mujoco_store(tmp_path_factory):
    """Two 10-frame MuJoCo episodes at 32 px, with state and masks: twice the tiny run's 16 px,
    so planning and evaluation read a store at another resolution than the model's."""
    from genie_robot.sim.generate import generate_dataset

    path = tmp_path_factory.mktemp("plan_data") / "mujoco.h5"
    generate_dataset(path, episodes=2, steps=10, size=32, progress=False)
    return path


@pytest.fixture(scope="session")
def planning_run(tiny_run, mujoco_store, tmp_path_factory):
    """tiny_run's models (linked) plus an adapter trained as the fourth stage on the store's
    commands and the LAM's latent actions."""
    from genie_robot.models import AdapterConfig
    from genie_robot.train.trainer import TrainConfig, Trainer

    run = tmp_path_factory.mktemp("planning_run")
    for kind in ("tokenizer", "lam", "dynamics"):
        (run / kind).symlink_to(tiny_run / kind)
    config = TrainConfig(steps=30, batch_size=2, clip_len=4, warmup=2, lr=3e-3, ckpt_every=30, sample_every=0)
    Trainer("adapter", AdapterConfig.preset("tiny"), [mujoco_store], run, config, progress=False).train()
    return run


@pytest.fixture(scope="session")
def change_run(planning_run, tmp_path_factory):
    """planning_run's stages (linked) plus an untrained tiny change tokenizer and its dynamics:
    both world models of one run."""
    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import save_model

    run = tmp_path_factory.mktemp("change_run")
    for kind in ("tokenizer", "lam", "dynamics", "adapter"):
        (run / kind).symlink_to((planning_run / kind).resolve())
    torch.manual_seed(0)
    for kind in ("change_tokenizer", "change_dynamics"):
        config_cls, model_cls = MODELS[kind]
        save_model(model_cls(config_cls.preset("tiny")), run / kind)
    return run
