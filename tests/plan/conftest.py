import numpy as np
import pytest


@pytest.fixture(scope="session")
def mujoco_store(tmp_path_factory):
    """Two 10-frame MuJoCo episodes at the tiny run's 16 px, with state and masks."""
    from genie_robot.sim.generate import generate_dataset

    path = tmp_path_factory.mktemp("plan_data") / "mujoco.h5"
    generate_dataset(path, episodes=2, steps=10, size=16, progress=False)
    return path


@pytest.fixture(scope="session")
def planning_run(tiny_run, mujoco_store, tmp_path_factory):
    """tiny_run's models (linked) plus an adapter fit on the store's commands and the LAM's latents."""
    from genie_robot.data.store import EpisodeStore
    from genie_robot.models.adapter import fit_adapter
    from genie_robot.models.world_model import WorldModel
    from genie_robot.train.checkpoint import save_model

    run = tmp_path_factory.mktemp("planning_run")
    for kind in ("tokenizer", "lam", "dynamics"):
        (run / kind).symlink_to(tiny_run / kind)
    wm = WorldModel.load(run)
    with EpisodeStore(mujoco_store) as store:
        commands = np.concatenate([e.read_actions() for e in store])
        latents = np.concatenate([wm.infer_actions(e.read_frames()) for e in store])
        names = store[0].action_names
    save_model(fit_adapter(commands, latents, names, wm.num_actions, steps=20), run / "adapter")
    return run
