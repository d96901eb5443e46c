"""robomimic-style HDF5 (robomimic, MimicGen, LIBERO, robosuite recordings) -> episode store.

The published layout, read with h5py alone:
  data/                      attrs: env_args (JSON: env_name, env_kwargs.control_freq, ...);
                             LIBERO adds problem_info (JSON with language_instruction)
  data/demo_N/actions        [T, A] float, actions[t] applied at observation t
  data/demo_N/obs/<key>      per-step observations: <camera>_image (robomimic, MimicGen) or
                             <camera>_rgb (LIBERO) uint8 [T, H, W, 3]; low-dimensional keys
                             (robot0_eef_pos, robot0_gripper_qpos, ee_states, ...) [T, D]
  data/demo_N/states         [T, S] flattened MuJoCo simulator state
  mask/<filter key>          names of the demos in a split (robomimic's train / valid)

Each demo is one episode: its T frames, the T-1 actions between them (actions[t] moves
frame t to frame t+1; the last action leads past the recording and is dropped, as RLDS
conversion does), and per-step state from every low-dimensional observation plus `states`
(as sim_state). Demos are taken in numeric order (demo_2 before demo_10).

Orientation: robosuite renders OpenGL-style, bottom row first. robomimic's and MimicGen's
extraction flips images upright before writing; LIBERO's datasets keep them upside down
(LIBERO issue #11). `flip="auto"` flips vertically when the file is LIBERO's (its
problem_info / bddl_file_name attributes), otherwise not. OpenVLA's LIBERO conversion rotates
by 180 degrees instead; `flip="rotate180"` reproduces that, `vertical` and `none` force either."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from genie_robot.data.convert import Converted, check_size
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError, StoreError

FLIPS = ("auto", "none", "vertical", "rotate180")
ROBOSUITE_FPS = 20  # robosuite's default control_freq, when env_args does not say
OSC_POSE_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]  # robosuite's OSC_POSE controller


def _demo_number(name: str) -> int:
    match = re.fullmatch(r"demo_(\d+)", name)
    return int(match.group(1)) if match else -1


def _json_attr(group, key: str) -> dict:
    value = group.attrs.get(key)
    if value is None:
        return {}
    try:
        parsed = json.loads(value.decode() if isinstance(value, bytes) else value)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


class RobomimicReader:
    def __init__(self, path: str | Path, camera: str, size: int = 64, flip: str = "auto",
                 filter_key: str | None = None, split: str | None = None):
        self.path, self.camera, self.size = Path(path), camera, check_size(size)
        if flip not in FLIPS:
            raise InputError(f"--flip must be one of {', '.join(FLIPS)}, got {flip!r}")
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file; pass the robomimic/LIBERO/MimicGen .hdf5 file with --file")
        try:
            with h5py.File(self.path, "r") as f:
                self._read_layout(f, filter_key)
        except OSError as exc:
            raise StoreError(f"{self.path} is not a readable HDF5 file ({exc}); is it truncated or another format?") from exc
        self.flip = ("vertical" if self.is_libero else "none") if flip == "auto" else flip
        self.split = split or filter_key or "train"

    def _read_layout(self, f: h5py.File, filter_key: str | None) -> None:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise StoreError(f"{self.path} has no 'data' group: not a robomimic-style file (expected data/demo_N/...)")
        data = f["data"]
        demos = sorted((name for name in data if _demo_number(name) >= 0), key=_demo_number)
        if filter_key is not None:
            if f"mask/{filter_key}" not in f:
                keys = sorted(f["mask"]) if "mask" in f else []
                raise InputError(f"{self.path} has no filter key {filter_key!r} (mask/{filter_key}); it has {keys or 'none'}")
            wanted = {n.decode() if isinstance(n, bytes) else str(n) for n in f[f"mask/{filter_key}"][()]}
            demos = [d for d in demos if d in wanted]
        if not demos:
            raise StoreError(f"{self.path} holds no demos (data/demo_N groups){' in ' + filter_key if filter_key else ''}; "
                             "nothing to convert")
        first = data[demos[0]]
        obs_keys = sorted(first["obs"]) if "obs" in first else []
        cameras = [k for k in obs_keys if first["obs"][k].ndim == 4]
        self.image_key = next((k for k in (f"{self.camera}_image", f"{self.camera}_rgb", self.camera) if k in obs_keys), None)
        if self.image_key is None:
            raise InputError(f"{self.path}: no camera {self.camera!r} in {demos[0]}/obs (looked for {self.camera}_image, "
                             f"{self.camera}_rgb, {self.camera}); cameras there: {', '.join(cameras) or 'none'}")
        self.state_keys = [k for k in obs_keys if first["obs"][k].ndim == 2]
        env_args = _json_attr(data, "env_args")
        self.is_libero = "problem_info" in data.attrs or "bddl_file_name" in data.attrs
        self.language = _json_attr(data, "problem_info").get("language_instruction")
        kwargs = env_args.get("env_kwargs", {})
        self.fps = float(kwargs.get("control_freq", ROBOSUITE_FPS))
        controller = json.dumps(kwargs.get("controller_configs", {}))
        if "actions" in first and first["actions"].ndim != 2:
            raise StoreError(f"{self.path}: {demos[0]}/actions has shape {list(first['actions'].shape)}, expected [T, A]")
        action_dim = first["actions"].shape[1] if "actions" in first else 0
        self.action_names = (OSC_POSE_NAMES if "OSC_POSE" in controller and action_dim == 7
                             else [f"action_{i}" for i in range(action_dim)])
        self.robot = env_args.get("env_name") or ("libero" if self.is_libero else "robosuite")
        self.demos = demos

    def count(self, done: set[str]) -> int:
        return sum(self._origin(d) not in done for d in self.demos)

    def _origin(self, demo: str) -> str:
        return f"{self.path.name}:{demo}"

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        with h5py.File(self.path, "r") as f:
            for demo in self.demos:
                if self._origin(demo) not in done:
                    yield self._episode(f["data"][demo], demo)

    def _episode(self, group: h5py.Group, demo: str) -> Converted:
        where = f"{self.path}:{demo}"
        if self.image_key not in group.get("obs", {}):
            raise StoreError(f"{where} has no obs/{self.image_key} (the first demo has it); the file is inconsistent")
        images = group["obs"][self.image_key][()]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise StoreError(f"{where}/obs/{self.image_key}: expected uint8 [T, H, W, 3], got {images.dtype} "
                             f"{list(images.shape)}")
        if len(images) < 2:
            raise StoreError(f"{where} has {len(images)} frame(s); an episode needs at least 2")
        if self.flip == "vertical":
            images = images[:, ::-1]
        elif self.flip == "rotate180":
            images = images[:, ::-1, ::-1]
        steps = len(images)
        actions = None
        if "actions" in group:
            actions = np.asarray(group["actions"][()], np.float32)
            if actions.ndim != 2 or len(actions) != steps:
                raise StoreError(f"{where}/actions has shape {list(actions.shape)}, expected [{steps}, A] "
                                 f"(one action per observation)")
            actions = actions[:-1]
        state = {key: group["obs"][key][()] for key in self.state_keys if key in group["obs"]}
        if "states" in group:
            state["sim_state"] = group["states"][()]
        for key, value in state.items():
            if len(value) != steps:
                raise StoreError(f"{where}: {key} has {len(value)} rows for {steps} frames")
        attrs = {"source": f"robomimic:{self.path.stem}", "robot": self.robot, "fps": self.fps, "split": self.split,
                 "origin": self._origin(demo)}
        if self.language:
            attrs["language"] = self.language
        return Converted(resize_video(np.ascontiguousarray(images), self.size), actions,
                         self.action_names if actions is not None else None, attrs, state)
