"""`genie-robot` command line. User errors print one line and exit 2 (no traceback)."""
from __future__ import annotations

import argparse
import json
import sys

from genie_robot.errors import GenieRobotError


def _cmd_data_mujoco(args) -> None:
    from genie_robot.sim.generate import generate_dataset

    result = generate_dataset(
        args.out, args.episodes, args.steps, args.size, args.seed, args.policy, args.camera,
        args.split, overwrite=args.overwrite,
    )
    print(
        f"wrote {result['written']} episodes to {args.out}: {result['contact_episodes']} with contact, "
        f"{result['deformed_episodes']} with visible soft-object deformation"
    )


def _cmd_data_info(args) -> None:
    from genie_robot.data.inspect import format_info, store_info
    from genie_robot.data.store import EpisodeStore

    with EpisodeStore(args.file) as store:
        info = store_info(store)
    print(json.dumps(info, indent=2) if args.json else format_info(info))


def _cmd_data_preview(args) -> None:
    from genie_robot.data.inspect import write_preview
    from genie_robot.data.store import EpisodeStore

    with EpisodeStore(args.file) as store:
        if not 0 <= args.episode < len(store):
            raise GenieRobotError(f"--episode {args.episode} out of range: {args.file} has {len(store)} episodes")
        sheet, gif = write_preview(store, args.out, args.episode)
    print(f"wrote {sheet} and {gif}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genie-robot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make, inspect and preview episode stores")
    data_cmds = data.add_subparsers(dest="data_command", required=True)

    mj = data_cmds.add_parser("mujoco", help="generate episodes from the MuJoCo arm world")
    mj.add_argument("--episodes", type=int, default=20)
    mj.add_argument("--steps", type=int, default=32, help="frames per episode (steps-1 commands)")
    mj.add_argument("--size", type=int, default=64, help="rendered resolution (square)")
    mj.add_argument("--seed", type=int, default=0)
    mj.add_argument("--policy", default="mixed", help="mixed | push | random")
    mj.add_argument("--camera", default="front", help="front | top")
    mj.add_argument("--split", default="train")
    mj.add_argument("--out", required=True)
    mj.add_argument("--overwrite", action="store_true", help="replace FILE instead of appending/resuming")
    mj.set_defaults(func=_cmd_data_mujoco)

    info = data_cmds.add_parser("info", help="summarise an episode store")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_cmd_data_info)

    preview = data_cmds.add_parser("preview", help="contact sheet PNG + one episode as GIF")
    preview.add_argument("file")
    preview.add_argument("--out", required=True, help="sheet.png (the GIF is written beside it)")
    preview.add_argument("--episode", type=int, default=0)
    preview.set_defaults(func=_cmd_data_preview)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GenieRobotError as exc:
        print(f"genie-robot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genie-robot: interrupted; finished episodes/checkpoints are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
