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
        (["data", "mujoco", "--episodes", "1", "--steps", "1", "--out", str(tmp_path / "x.h5")], "--steps must be >= 2"),
        (["data", "mujoco", "--policy", "dance", "--out", str(tmp_path / "x.h5")], "unknown policy"),
        (["data", "mujoco", "--workers", "0", "--out", str(tmp_path / "x.h5")], "--workers must be >= 1"),
        (["train", "tokenizer", "--data", str(tmp_path / "bad.h5"), "--lr", "nan", "--out", str(tmp_path / "r")],
         "lr must be > 0"),
        (["train", "tokenizer", "--data", str(tmp_path / "bad.h5"), "--precision", "fp8", "--out", str(tmp_path / "r")],
         "precision must be"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
