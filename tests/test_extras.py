"""Optional dependencies: a missing extra is one line naming the extra to install."""
import sys

import pytest

from genie_robot.cli import main
from genie_robot.extras import EXTRAS, MissingExtra, require


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_missing_extra_names_the_install_command(module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # what `import module` sees when it is not installed
    with pytest.raises(MissingExtra, match=rf'pip install "genie-robot\[{EXTRAS[module][0]}\]"'):
        require(module)


def test_cli_reports_a_missing_extra_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert main(["data", "video", str(clip), "--out", str(tmp_path / "v.h5")]) == 2
    err = capsys.readouterr().err
    assert "genie-robot[video]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v.h5").exists()


def test_installed_extras_import():
    """`make setup` installs every extra: each one imports here."""
    for module in EXTRAS:
        require(module)
