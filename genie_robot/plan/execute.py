"""`genie-robot plan`: plan toward a goal in imagination, execute the commands in MuJoCo.

The start is a stored MuJoCo frame (FILE.h5:EPISODE:STEP). The store keeps that instant's
ground truth (joint angles, gripper, object poses, soft-cube vertices) but not velocities or
the generator's seed, so the world is restored from the state with everything at rest
(`ArmWorld.set_state`; rendering it gives back the stored frame nearly exactly). Planning is
closed loop: each plan starts from the current MuJoCo frame, its first `replan_every` commands
are executed, and the planner looks again. What is planned how is a task's preset
(plan/presets.py)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genie_robot.data.store import EpisodeStore, state_positions
from genie_robot.data.transforms import resize_masks, resize_video
from genie_robot.errors import InputError
from genie_robot.eval.physics import ColourSegmenter
from genie_robot.io import atomic_path
from genie_robot.media import labelled_columns, read_image, write_video
from genie_robot.plan.imagine import Goal, GoalCost, ImaginationPlanner, object_points, state_goal
from genie_robot.plan.presets import VOCABULARIES, PlanSettings
from genie_robot.plan.search import receding_horizon
from genie_robot.sim.controllers import behaviour_commands
from genie_robot.sim.scene import DEFAULT_CAMERA, MOVABLE_OBJECTS, OBJECTS, recorded_camera


@dataclass
class StoredFrame:
    """One stored instant, its frames and masks resized to the model's resolution."""

    frame: np.ndarray            # uint8 [S, S, 3]
    state: dict                  # state/* at that frame (empty when the store has none)
    mask: np.ndarray | None      # uint8 [H, W] object ids, when stored
    episode_frames: np.ndarray   # the whole episode (to fit a colour segmenter)
    episode_masks: np.ndarray | None
    resolution_note: str | None  # what was done to the store's frames to reach the model's size
    episode: tuple[str, int] = ("", -1)  # (store, episode index) the frames come from
    camera: str = DEFAULT_CAMERA  # the MuJoCo view the frames were rendered from


def parse_frame_ref(text: str) -> tuple[str, int, int] | None:
    """FILE.h5:EPISODE:STEP -> (file, episode, step); None for anything else (an image path)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0].endswith((".h5", ".hdf5")):
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        raise InputError(f"{text!r}: write a stored frame as FILE.h5:EPISODE:STEP with integer episode and step") from None


def read_stored_frame(path: str, episode: int, step: int, size: int) -> StoredFrame:
    with EpisodeStore(path) as store:
        note = store.resolution_note(size)
        ep = store.episode(episode)
        if not 0 <= step < ep.num_frames:
            raise InputError(f"{path} episode {episode} has frames 0..{ep.num_frames - 1}; got step {step}")
        frames = resize_video(ep.read_frames(), size)
        masks = resize_masks(ep.masks[:], size) if ep.has_masks else None
        state = {key: ep.read_state(key)[step] for key in ep.state_keys}
        camera = recorded_camera(ep)
    return StoredFrame(frames[step], state, None if masks is None else masks[step], frames, masks, note, (str(path), episode),
                       camera)


def object_goal(start: StoredFrame, goal: StoredFrame, name: str, wm) -> Goal:
    """Targets = the centroids of one object (`name`; `arm` to reach the arm's pose), of every
    movable object visible (`all`), or of those and the arm (`scene`: a push's goal frame has the
    hand where the push ended, which pulls the hand through the object before it moves), or the
    arm's far end from its mount (`hand`: where the hand is, which the arm's centroid only loosely
    follows), in the goal frame's true mask; imagined frames are segmented by colours fit on
    both episodes and their tokenizer reconstructions (generated frames come from the same
    decoder, as in the evaluation report)."""
    ids = {o.name: o.mask_id for o in OBJECTS}
    groups = {"all": [o.name for o in MOVABLE_OBJECTS], "scene": [o.name for o in OBJECTS], "hand": ["arm"]}
    if name not in groups and name not in ids:
        raise InputError(f"unknown object {name!r}; choose from {', '.join(groups)}, {', '.join(ids)}")
    if goal.mask is None or start.episode_masks is None:
        raise InputError("the object cost needs masks: give --start and --goal as stored MuJoCo frames (FILE.h5:EPISODE:STEP)")
    names = groups.get(name, [name])
    far_end_from = {}
    if name == "hand":  # the arm's mount: its pixels in every frame of the episode
        mount_N2 = np.argwhere((start.episode_masks == ids["arm"]).all(0))
        if not len(mount_N2):
            raise InputError("no arm pixel stays put through the start's episode to locate the arm's mount; "
                             "reach the arm's pose with --set target=arm")
        far_end_from = {ids["arm"]: tuple(mount_N2.mean(0))}
    targets_rc = {ids[n]: tuple(object_points(goal.mask[None], ids[n], far_end_from)[0]) for n in names}
    targets_rc = {object_id: rc for object_id, rc in targets_rc.items() if not np.isnan(rc).any()}
    if not targets_rc:
        raise InputError(f"{name} is not visible in the goal frame; pick another --object or goal")
    episodes = [start] if goal.episode == start.episode else [start, goal]  # a push's goal is often its own episode's
    frames = [e.episode_frames for e in episodes]
    masks = [e.episode_masks for e in episodes]
    segmenter = ColourSegmenter.fit(np.concatenate(frames + [wm.reconstruct(f) for f in frames]),
                                    np.concatenate(masks + masks))
    return Goal(image=goal.frame, targets_rc=targets_rc, segmenter=segmenter, far_end_from=far_end_from)


def vocabulary_commands(vocabulary: str) -> np.ndarray | None:
    """The arm commands a planner searches over (`ImaginationPlanner(commands=...)`): none for
    the model's latent actions, the 9 discrete behaviours of the MuJoCo arm's controllers."""
    if vocabulary not in VOCABULARIES:
        raise InputError(f"unknown planning vocabulary {vocabulary!r}; choose from {', '.join(VOCABULARIES)}")
    return behaviour_commands() if vocabulary == "behaviours" else None


def task_goal(settings: PlanSettings, start: StoredFrame, goal: StoredFrame | None, goal_image: np.ndarray, wm,
              probe) -> Goal:
    """The goal of `settings.cost` for `settings.target`: positions in the goal frame's masks
    (object), or as the run's state probe reads them (state)."""
    if settings.cost == "state":
        if probe is None:
            raise InputError("the state cost reads positions with the run's state probe, which this run lacks; train it "
                             "with `genie-robot train probe --data STORE_WITH_STATE.h5 --out RUN`, or plan with "
                             "--set cost=object --set anchor=false")
        return state_goal(goal_image, settings.target, probe)
    if goal is None:
        raise InputError("the object cost reads the goal's positions from its stored masks: give --goal as a stored "
                         "MuJoCo frame FILE.h5:EPISODE:STEP, or plan with the state cost (--task reach)")
    return object_goal(start, goal, settings.target, wm)


def final_costs(cost: GoalCost, frame_HWC: np.ndarray) -> float:
    return float(cost(frame_HWC[None])[0])


def plan_and_execute(wm, adapter, start_ref: str, goal_ref: str, out, settings: PlanSettings, steps: int = 12,
                     seed: int = 0, fps: float = 5.0, probe=None) -> dict:
    """Plan with `settings`, execute `steps` commands in MuJoCo (seen from the camera the start
    frame was rendered from), write OUT/{plan.gif, plan.json}; returns what plan.json holds.
    `probe`: the run's state probe (cost state)."""
    from genie_robot.sim.world import ArmWorld

    size = wm.image_size
    if (ref := parse_frame_ref(start_ref)) is None:
        raise InputError(f"--start {start_ref!r} must be a stored MuJoCo frame FILE.h5:EPISODE:STEP (its state is "
                         "restored in MuJoCo to execute the plan)")
    start = read_stored_frame(*ref, size)
    if not start.state:
        raise InputError(f"{start_ref} has no recorded state; start from an episode of `genie-robot data mujoco`")
    goal_stored = read_stored_frame(*ref, size) if (ref := parse_frame_ref(goal_ref)) else None
    goal_image = goal_stored.frame if goal_stored else read_image(goal_ref)
    goal = task_goal(settings, start, goal_stored, goal_image, wm, probe)
    config = settings.search()
    planner = ImaginationPlanner(wm, goal, settings.cost, config, settings.sampling(), adapter,
                                 vocabulary_commands(settings.vocabulary))

    world = ArmWorld(camera=start.camera)
    try:
        world.set_state(start.state)
        executed, imagined, plans, latents, commands = [world.render(size)], [], [], [], []

        def plan_fn(done: int) -> np.ndarray:
            plan = planner.plan(executed[-1], seed=seed + done, steps_left=steps - done)
            plans.append(plan)
            imagined.extend(plan.imagined[: min(config.execute_per_plan, steps - done)])
            return plan.choices

        def execute_fn(choice: int) -> None:
            latents.append(int(planner.latent_of_choice[choice]))
            commands.append(planner.commands[choice])
            world.step(commands[-1])
            executed.append(world.render(size))

        receding_horizon(plan_fn, execute_fn, steps, config)
        final_positions = state_positions(world.state())
    finally:
        world.close()

    executed = np.stack(executed)
    imagined = np.concatenate([executed[:1], np.stack(imagined)])
    result = {
        "start": start_ref, "goal": goal_ref, "settings": asdict(settings),
        "latents": latents, "commands": np.round(np.stack(commands), 4).tolist(),
        "final_distance": {"mujoco": final_costs(planner.cost, executed[-1]),
                           "imagined": final_costs(planner.cost, imagined[-1]),
                           "start": final_costs(planner.cost, executed[0])},
        "plans": len(plans), "seconds_per_plan": float(np.mean([p.seconds for p in plans])),
        "iteration_costs": [p.iteration_costs for p in plans],
        "notes": sorted({f.resolution_note for f in (start, goal_stored) if f and f.resolution_note}),
    }
    if goal_stored and goal_stored.state:
        goal_positions = state_positions(goal_stored.state)
        start_positions = state_positions(start.state)
        result["distance_m"] = {name: {"start": float(np.linalg.norm(start_positions[name] - target)),
                                       "final": float(np.linalg.norm(final_positions[name] - target))}
                                for name, target in goal_positions.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    goal_column = np.broadcast_to(goal.image, executed.shape)
    write_video(out / "plan.gif", labelled_columns([goal_column, imagined, executed], ["goal", "imagined", "MuJoCo"]), fps)
    with atomic_path(out / "plan.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result
