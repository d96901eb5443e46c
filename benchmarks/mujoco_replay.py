"""How faithfully the MuJoCo world resumes a recorded instant: `ArmWorld.set_state` from a frame
of a mixed-policy episode, then the recorded commands replayed for k frames, against the
recording. With the full state (the controller's `ee_target` and the arm's and rigid objects'
velocities, recorded since they were added) and with an older store's state (poses only: the
world starts at rest, its target on the hand). Planning restores its tasks' starts this way,
so this is what its "recorded" and "oracle" rows can trust.
--quick: 2 episodes, k = 4 (CI)."""
import argparse

import numpy as np

from genie_robot.sim.generate import record_episode
from genie_robot.sim.world import ArmWorld

RIGID = ("red_cube", "blue_cylinder")


def poses_only(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "ee_target" and not k.endswith("_vel")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--k", type=int, default=12, help="frames replayed")
    parser.add_argument("--seed", type=int, default=1, help="episode seed (1: the held-out one)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    episodes, k = (2, 4) if args.quick else (args.episodes, args.k)
    recorder, replayer = ArmWorld(), ArmWorld()
    errors = {"full state": ([], []), "poses only (older stores)": ([], [])}
    try:
        for index in range(episodes):
            recorded = record_episode(recorder, args.seed, index, steps=2 * k + 8, size=8)
            state, commands = recorded["state"], recorded["actions"]
            for start in (4, k + 4):  # two instants per episode, the hand usually moving at both
                for name, restore in (("full state", dict), ("poses only (older stores)", poses_only)):
                    replayer.set_state(restore({key: v[start] for key, v in state.items()}))
                    for command in commands[start: start + k]:
                        replayer.step(command)
                    end, truth = replayer.state(), {key: v[start + k] for key, v in state.items()}
                    hand, objects = errors[name]
                    hand.append(np.linalg.norm(end["ee_pos"] - truth["ee_pos"]))
                    objects += [np.linalg.norm(end[f"{n}_pose"][:3] - truth[f"{n}_pose"][:3]) for n in RIGID]
    finally:
        recorder.close()
        replayer.close()
    print(f"{episodes} episodes (seed {args.seed}), 2 instants each, {k} recorded commands replayed; "
          "distance to the recording, cm:")
    print("| restored from | hand mean | hand max | rigid objects mean | rigid objects max |\n|---|---|---|---|---|")
    for name, (hand, objects) in errors.items():
        hand_cm, objects_cm = 100 * np.array(hand), 100 * np.array(objects)
        print(f"| {name} | {hand_cm.mean():.2f} | {hand_cm.max():.2f} | {objects_cm.mean():.2f} | {objects_cm.max():.2f} |")


if __name__ == "__main__":
    main()
