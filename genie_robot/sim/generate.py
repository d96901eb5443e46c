"""Generate episode stores from the MuJoCo arm world."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.convert import check_policy_run
from genie_robot.data.inspect import VISIBLE_DEFORMATION
from genie_robot.data.store import EpisodeWriter
from genie_robot.errors import GenieRobotError, InputError
from genie_robot.sim.controllers import POLICIES
from genie_robot.sim.scene import DEFAULT_CAMERA, check_camera
from genie_robot.sim.world import COMMAND_NAMES, FRAME_DT, ArmWorld

ROBOT = "kinova_jaco"
FPS = round(1 / FRAME_DT)


def rollout(world: ArmWorld, policy, frames: int, size: int, camera: str = DEFAULT_CAMERA) -> dict:
    """Run `policy` for frames-1 commands from the current world state; collect everything."""
    video, masks, commands, contact, deformation = [], [], [], [], []
    states: dict[str, list] = {}

    def observe() -> None:
        video.append(world.render(size, camera=camera))
        masks.append(world.masks(size, camera=camera))
        for key, value in world.state().items():
            states.setdefault(key, []).append(value)
        contact.append(world.in_contact())
        deformation.append(world.deformation())

    observe()
    for _ in range(frames - 1):
        command = np.asarray(policy(world), dtype=np.float32)
        world.step(command)
        commands.append(command)
        observe()
    state = {k: np.stack(v) for k, v in states.items()}
    state["contact"] = np.array(contact, dtype=np.float32)
    state["soft_deformation"] = np.array(deformation, dtype=np.float32)
    return {
        "frames": np.stack(video),
        "masks": np.stack(masks),
        "actions": np.stack(commands),
        "state": state,
    }


def episode_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, index])


_worker_world: ArmWorld | None = None


def record_episode(world: ArmWorld, seed: int, index: int, policy: str = "mixed", steps: int = 32, size: int = 64,
                   camera: str = DEFAULT_CAMERA) -> dict:
    """Episode `index` of a `data mujoco --seed seed` store, recorded in `world`: a pure function of
    (seed, index), whichever process or world (of the same scene and frame rate) runs it."""
    seq = episode_seed(seed, index)
    world.reset(seed=int(seq.generate_state(1)[0]))
    rng = np.random.default_rng(seq.spawn(1)[0])
    return rollout(world, POLICIES[policy](rng), steps, size, camera)


def _episode(index: int, seed: int, policy: str, steps: int, size: int, camera: str) -> dict:
    global _worker_world
    if _worker_world is None:
        _worker_world = ArmWorld()
    return record_episode(_worker_world, seed, index, policy, steps, size, camera)


def generate_dataset(
    out: str | Path,
    episodes: int,
    steps: int,
    size: int = 64,
    seed: int = 0,
    policy: str = "mixed",
    camera: str = DEFAULT_CAMERA,
    split: str = "train",
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Write `episodes` episodes of `steps` frames each (steps-1 commands) to `out`.

    Appends to an existing store unless `overwrite`; episode k always uses seed (seed, k),
    so an interrupted run resumes by running the same command again. `workers` > 1 simulates
    in that many processes; episodes are written in order, so the store is the same."""
    check_policy_run(policy, POLICIES, episodes, steps)
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    check_camera(camera)
    contact_episodes = deformed_episodes = 0
    with EpisodeWriter(out, overwrite=overwrite) as writer, _episode_runner(workers) as run:
        first = len(writer)
        rates = writer.attribute_values("fps")
        if rates - {FPS}:
            raise InputError(f"{out} holds episodes recorded at {sorted(rates)} fps and the arm world now records at {FPS}; "
                             "appending would mix frame rates in one store: pass --overwrite, or another --out")
        bar = tqdm(range(first, episodes), desc="mujoco episodes", unit="ep", disable=not progress,
                   initial=first, total=episodes)
        for data in run(lambda index: (index, seed, policy, steps, size, camera), bar):
            writer.append(
                data["frames"],
                actions=data["actions"],
                action_names=list(COMMAND_NAMES),
                state=data["state"],
                masks=data["masks"],
                source="mujoco",
                robot=ROBOT,
                fps=FPS,
                language="",
                split=split,
                camera=camera,
            )
            contact_episodes += bool(data["state"]["contact"].any())
            deformed_episodes += bool(data["state"]["soft_deformation"].max() > VISIBLE_DEFORMATION)
            bar.set_postfix(frames_per_s=f"{bar.format_dict['rate'] * steps:.0f}" if bar.format_dict.get("rate") else "-")
    written = episodes - first
    return {"written": written, "already_there": first, "contact_episodes": contact_episodes,
            "deformed_episodes": deformed_episodes}



def _episode_of(future: Future) -> dict:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        # A simulation process that dies (a crash in MuJoCo or the GL driver, or killed for memory) takes the pool with it.
        raise GenieRobotError("a simulation worker process died; the episodes written before it are kept in the store: "
                              "run the same command again to resume (with --workers 1 if it recurs)") from exc


class _episode_runner:
    """Context manager giving run(args_of, indices) -> episodes in index order, computed here
    (workers == 1) or in a pool of spawned processes (EGL contexts do not survive a fork)."""

    def __init__(self, workers: int):
        self.workers, self.pool = workers, None

    def __enter__(self):
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self.run

    def run(self, args_of, indices):
        if self.pool is None:
            yield from (_episode(*args_of(i)) for i in indices)
            return
        # Bounded look-ahead: at most 2 episodes per worker wait in memory.
        pending, indices = [], iter(indices)
        for index in indices:
            pending.append(self.pool.submit(_episode, *args_of(index)))
            if len(pending) >= 2 * self.workers:
                yield _episode_of(pending.pop(0))
        for future in pending:
            yield _episode_of(future)

    def __exit__(self, *exc):
        global _worker_world
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        elif _worker_world is not None:
            _worker_world.close()
            _worker_world = None
