"""Builds devrun/ (ignored: .git/info/exclude), which `run` carries to the device machine for
run_on_device.sh: the stores (made here, since the device has no MuJoCo renderer), the
hdf5plugin Python files with only its blosc filter (stripped; the whole wheel is 46 MB against
the 64 MiB a call carries) and the mujoco wheels for Python 3.12 (`eval` imports the sim's names).

    python docs/results/base_gpu/prepare.py      # then: run `bash devrun/run.sh`, carry ["devrun"]

Training store: the demo's 160 mixed-policy episodes (seed 0) and the first 100 of seed 7's
(`data mujoco --episodes 320 --seed 7`, the probe's store); exploration: the demo's 64 random
episodes (seed 2); held-out: the first 8 of seed 1, split test (`eval` reads those 8)."""
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import h5py
import hdf5plugin

DATA, OUT = Path("out/quality/data"), Path("devrun")


def subset(dst: Path, parts: list[tuple[Path, int]]) -> None:
    """The first episodes of each store, renumbered into one store (chunks copied as they are)."""
    with h5py.File(dst, "w") as out:
        count = 0
        for src, episodes in parts:
            with h5py.File(src) as store:
                if not count:
                    out.attrs.update(store.attrs)
                    out.create_group("episodes")
                for key in sorted(store["episodes"])[:episodes]:
                    store.copy(store["episodes"][key], out["episodes"], name=f"{count:06d}")
                    count += 1
    print(dst, count, "episodes")


def main() -> None:
    data = OUT / "base" / "data"
    data.mkdir(parents=True, exist_ok=True)
    subset(data / "mujoco.h5", [(DATA / "mujoco.h5", 160), (DATA / "probe7.h5", 100)])
    subset(data / "explore.h5", [(DATA / "explore.h5", 64)])
    subset(data / "heldout.h5", [(DATA / "planning.h5", 8)])
    plugin = Path(hdf5plugin.__file__).parent
    slim = OUT / "site" / "hdf5plugin"
    (slim / "plugins").mkdir(parents=True, exist_ok=True)
    for source in plugin.glob("*.py"):
        if source.name != "test.py":
            shutil.copy(source, slim)
    subprocess.run(["strip", "-o", str(slim / "plugins" / "libh5blosc.so"), str(plugin / "plugins" / "libh5blosc.so")], check=True)
    wheels = OUT / "whl"
    for name in ("mujoco", "mujoco-core"):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                        "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
                        "-d", str(wheels), f"{name}=={version(name)}"],
                       check=True)
    shutil.copy(Path(__file__).with_name("run_on_device.sh"), OUT / "run.sh")


if __name__ == "__main__":
    main()
