"""How well each transition's commanded behaviour shows in the hand's actual motion: the most
that latent actions read from video can agree with the commands (`eval`'s NMI), per frame
rate and push height of the mixed policy. A transition's motion label is `behaviour_of` its
displacement read as a command (the dominant axis and sign, or "stay" under a quarter of a
full-speed step). Also the share of "-z" commands under which the hand did not move (pressed
against the table).
--quick: 2 episodes of 6 frames, defaults only (CI)."""
import argparse

import numpy as np

from genie_robot.eval.actions import confusion, normalized_mutual_information
from genie_robot.sim.controllers import BEHAVIOURS, PushController, behaviour_of
from genie_robot.sim.generate import record_episode
from genie_robot.sim.world import FRAME_DT, ArmWorld

DOWN = BEHAVIOURS.index("-z")


def measure(frame_dt: float, push_height: float, episodes: int, frames: int) -> tuple[float, float]:
    """(NMI of motion labels vs commanded behaviours, share of -z commands that did not move)."""
    default_height, PushController.PUSH_HEIGHT = PushController.PUSH_HEIGHT, push_height
    world = ArmWorld(frame_dt=frame_dt)
    try:
        behaviours, displacements = [], []
        for index in range(episodes):
            recorded = record_episode(world, 3, index, steps=frames, size=8)  # the validation seed
            behaviours.append(behaviour_of(recorded["actions"]))
            displacements.append(np.diff(recorded["state"]["ee_pos"], axis=0))
    finally:
        PushController.PUSH_HEIGHT = default_height
        world.close()
    behaviours, displacement = np.concatenate(behaviours), np.concatenate(displacements)
    full_step = world.max_speed * frame_dt
    # The hand's motion read as a command at full speed (no gripper): stay, or a moving behaviour.
    labels = behaviour_of(np.pad(displacement / full_step, ((0, 0), (0, 1))))
    nmi = normalized_mutual_information(confusion(labels, behaviours, 7))
    down = behaviours == DOWN
    stuck = (down & (np.abs(displacement[:, 2]) < 0.25 * full_step)).sum() / max(down.sum(), 1)
    return nmi, float(stuck)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="2 episodes of 6 frames, defaults only (CI)")
    args = parser.parse_args()
    settings = [(FRAME_DT, PushController.PUSH_HEIGHT)]
    if args.quick:
        args.episodes, args.frames = 2, 6
    else:
        settings = [(0.1, 0.03), (0.1, PushController.PUSH_HEIGHT), (FRAME_DT, 0.03), *settings]
    print(f"{args.episodes} mixed-policy episodes of {args.frames} frames (seed 3) per row")
    print("frame rate | push height | NMI motion label vs command | -z commands that did not move")
    for frame_dt, push_height in settings:
        nmi, stuck = measure(frame_dt, push_height, args.episodes, args.frames)
        print(f"{1 / frame_dt:6.0f} Hz  | {push_height * 100:8.1f} cm | {nmi:27.2f} | {stuck:6.0%}", flush=True)


if __name__ == "__main__":
    main()
