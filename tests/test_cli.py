import subprocess
import sys

from genie_robot.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "genie_robot.cli", *args], capture_output=True, text=True, timeout=300)


def test_data_mujoco_info_preview(tmp_path, capsys):
    store = tmp_path / "d.h5"
    assert main(["data", "mujoco", "--episodes", "2", "--steps", "5", "--size", "32", "--out", str(store)]) == 0
    assert main(["data", "info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "episodes     2" in out and "32x32" in out and "ee_vx" in out and "of episodes touch" in out
    assert main(["data", "preview", str(store), "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0 and (tmp_path / "sheet.gif").stat().st_size > 0


def test_user_errors_are_one_line_without_traceback(tmp_path):
    (tmp_path / "bad.h5").write_text("not hdf5")
    for args, message in [
        (["data", "info", str(tmp_path / "missing.h5")], "no such episode store"),
        (["data", "info", str(tmp_path / "bad.h5")], "not a readable HDF5 file"),
        (["data", "mujoco", "--episodes", "1", "--steps", "1", "--out", str(tmp_path / "x.h5")], "argument --steps: must be >= 2, got 1"),
        (["data", "mujoco", "--policy", "dance", "--out", str(tmp_path / "x.h5")],
         "argument --policy: invalid choice: 'dance' (choose from 'mixed', 'push', 'random')"),
        (["data", "mujoco", "--workers", "0", "--out", str(tmp_path / "x.h5")], "argument --workers: must be >= 1, got 0"),
        (["train", "tokenizer", "--data", str(tmp_path / "bad.h5"), "--lr", "nan", "--out", str(tmp_path / "r")],
         "argument --lr: 'nan' is not a finite number"),
        (["train", "tokenizer", "--data", str(tmp_path / "bad.h5"), "--precision", "fp8", "--out", str(tmp_path / "r")],
         "argument --precision: invalid choice: 'fp8'"),
        (["data", "info", str(tmp_path)], "is a directory, not an episode store"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def _commands(parser, prefix=()):
    """(argv prefix, parser) of every leaf command, walking nested subcommands."""
    import argparse

    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield list(prefix), parser
    for action in subcommands:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*prefix, name))


def _required_args(parser) -> list[str]:
    """Dummy values for a command's required arguments (parsing only: nothing is opened)."""
    argv = []
    for action in parser._actions:
        value = next(iter(action.choices)) if action.choices else "x"
        if not action.option_strings and action.dest != "help":
            argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


def test_every_numeric_flag_of_every_command_is_range_checked(capsys):
    """Table-driven over the parser itself, so a new flag cannot skip validation: each flag
    that takes a number parses through `bounded`, and refuses text, NaN and out-of-range
    values with one line that names the flag."""
    import pytest

    from genie_robot.cli import build_parser, setting

    parser, checked = build_parser(), 0
    for prefix, command in _commands(parser):
        base = prefix + _required_args(command)
        for action in command._actions:
            if not action.option_strings or action.nargs == 0 or action.type in (None, setting):  # --set: its own test
                continue
            assert hasattr(action.type, "low"), f"{' '.join(prefix)} {action.option_strings[0]} is not range-checked"
            bad = ["abc", "nan", "inf"]
            if action.type.low is not None:
                bad.append(str(action.type.low - 1))
            if action.type.above is not None:
                bad.append(str(action.type.above))
            if action.type.high is not None:
                bad.append(str(action.type.high + 1))
            flag = action.option_strings[0]
            for value in bad:
                with pytest.raises(SystemExit) as exit_info:
                    parser.parse_args(base + [flag, value])
                err = capsys.readouterr().err
                assert exit_info.value.code == 2 and f"argument {flag}" in err and len(err.strip().splitlines()) == 1, err
            checked += 1
    assert checked > 40


def test_flags_with_a_fixed_set_of_values_list_them(capsys):
    import pytest

    from genie_robot.cli import build_parser

    for argv in (["train", "--data", "x", "--out", "y", "tokenizer", "--device", "tpu"],
                 ["train", "critic", "--data", "x", "--out", "y"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a choice read lazily from the module that defines it
        build_parser().parse_args(["data", "platformer", "--game", "zelda", "--out", "x.h5"])
    assert "invalid choice: 'zelda' (choose from 'pitfall'," in capsys.readouterr().err
