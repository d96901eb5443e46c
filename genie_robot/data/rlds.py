"""RLDS datasets -> episode store: RT-1 (`fractal20220817_data`) first, and any other Open
X-Embodiment dataset by naming its image and action keys.

Nothing is downloaded: `--dir` is a prepared TFDS dataset folder (the one holding
dataset_info.json, e.g. .../fractal20220817_data/0.1.0), opened with
`tfds.builder_from_directory`. Known datasets' keys live in datasets/oxe_datasets.json.

Alignment: RLDS step t holds observation o_t and the action a_t taken after seeing it, so a_t
moves frame t to frame t+1 and the store's actions[t] = a_t. The last step's action leads to a
frame that was never recorded, so it is dropped: T steps give T frames and T-1 actions.

Action vector: the action keys' values flattened in the order given (bools and ints become
floats); names are the key's last part, with _i per element when it has more than one
(RT-1: world_vector_0..2, rotation_delta_0..2, gripper_closedness_action, terminate_episode_0..2,
base_displacement_vector_0..1, base_displacement_vertical_rotation).

Episodes: one RLDS episode is one store episode. Steps after `is_last` are dropped; an
`is_first` inside an episode starts a new store episode (origin suffix .1, .2 ...). The
language instruction of an episode's first step becomes its `language` attribute.

Frames are centre-cropped to square, then area-resized to --size (genie_robot/data/transforms.py):
RT-1's 256x320 loses 32 columns on each side, nothing is padded or stretched. Steps are decoded
CHUNK_STEPS at a time and only the resized frames are kept, so memory stays bounded by one
episode at the stored resolution."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from genie_robot.data.convert import Converted, check_size
from genie_robot.data.transforms import resize_video, to_rgb
from genie_robot.errors import InputError
from genie_robot.extras import require

# TensorFlow's C++ start-up notices would bury the progress bar; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
KNOWN_DATASETS = Path(__file__).resolve().parents[2] / "datasets" / "oxe_datasets.json"
CHUNK_STEPS = 64  # steps decoded at once (64 RT-1 images are 16 MB)


def known_datasets() -> dict[str, dict]:
    if not KNOWN_DATASETS.exists():
        raise InputError(f"{KNOWN_DATASETS} is missing (it ships in the repository's datasets/ folder); "
                         "run from a checkout, or name the keys with --image-key and --action-keys")
    return json.loads(KNOWN_DATASETS.read_text())["datasets"]


def open_builder(directory: str | Path):
    """`tfds.builder_from_directory` with errors that say which folder to point at."""
    path = Path(directory)
    if not path.is_dir():
        raise InputError(f"{path}: no such directory; --dir must be a prepared TFDS dataset folder")
    if not (path / "dataset_info.json").exists():
        versions = sorted(p.parent for p in path.glob("*/dataset_info.json"))
        hint = f"; it holds versions, pass one of them, e.g. --dir {versions[-1]}" if versions else (
            "; expected the folder holding dataset_info.json, features.json and *.tfrecord-* files "
            "(e.g. what `gsutil -m cp -r gs://gresearch/robotics/fractal20220817_data/0.1.0 .` fetches)")
        raise InputError(f"{path}: not a TFDS dataset directory (no dataset_info.json){hint}")
    tfds = require("tensorflow_datasets")  # slow import (TensorFlow): only when converting

    try:
        return tfds.builder_from_directory(str(path))
    except Exception as exc:  # TFDS raises many kinds for damaged metadata
        raise InputError(f"{path}: TFDS could not open this dataset ({type(exc).__name__}: {exc}); "
                         "re-copy the folder (dataset_info.json and features.json must match the tfrecord files)") from None


def _leaves(feature, prefix: str = "") -> dict[str, Any]:
    """Flat {"observation/image": feature, ...} of a (nested) FeaturesDict."""
    import tensorflow_datasets as tfds

    if isinstance(feature, tfds.features.FeaturesDict):
        out = {}
        for key, value in feature.items():
            out.update(_leaves(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): feature}


def _get(tree: dict, key: str):
    for part in key.split("/"):
        tree = tree[part]
    return tree


def _nest(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        *parents, last = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


class RLDSReader:
    """Validates the dataset and keys on construction (before any output is created)."""

    def __init__(
        self,
        directory: str | Path,
        size: int = 64,
        split: str = "train",
        dataset: str | None = None,
        image_key: str | None = None,
        action_keys: list[str] | None = None,
        language_key: str | None = None,
        max_episodes: int | None = None,
        max_steps: int | None = None,
    ):
        self.size = check_size(size)
        self.builder = open_builder(directory)
        import tensorflow_datasets as tfds  # after open_builder's path checks: the import takes seconds
        info = self.builder.info
        self.dataset = dataset or info.name
        self.name = f"{info.name}/{info.version}"
        if split not in info.splits:
            raise InputError(f"{directory}: no split {split!r}; it has {sorted(info.splits)}")
        self.split = split
        if "steps" not in info.features or not isinstance(info.features["steps"], tfds.features.Dataset):
            raise InputError(f"{directory}: not an RLDS dataset (no 'steps' sequence among its features "
                             f"{sorted(info.features)}); convert videos with `genie-robot data video` instead")
        leaves = _leaves(info.features["steps"].feature)
        entry = known_datasets().get(self.dataset, {})
        if not entry and not (image_key and action_keys):
            raise InputError(
                f"dataset {self.dataset!r} is not in {KNOWN_DATASETS.name} (known: {sorted(known_datasets())}); "
                f"name its keys with --image-key and --action-keys. Step keys: {sorted(leaves)}")
        self.image_key = image_key or entry["image_key"]
        keys = action_keys or entry["action_keys"]
        self.language_key = language_key or entry.get("language_key")
        self.robot, self.fps = entry.get("robot"), entry.get("fps")
        self.image_shape = self._check_image(leaves)
        self.action_keys, self.action_names = self._check_actions(leaves, keys)
        if self.language_key is not None:
            feature = self._leaf(leaves, self.language_key, "language")
            if np.dtype(feature.np_dtype).kind not in "OSU":  # TFDS text decodes to bytes objects
                raise InputError(f"language key {self.language_key!r} is {feature}, not text; "
                                 "pick a text key with --language-key")
        self.boundaries = [k for k in ("is_first", "is_last") if k in leaves]
        # Decode only the chosen camera: other image features stay as encoded bytes.
        skip = {k: tfds.decode.SkipDecoding() for k, f in leaves.items()
                if isinstance(f, tfds.features.Image) and k != self.image_key}
        self.decoders = {"steps": _nest(skip)} if skip else None
        available = info.splits[split].num_examples
        self.total = available if max_episodes is None else min(available, max_episodes)
        if max_steps is not None and max_steps < 2:
            raise InputError(f"--max-steps must be >= 2 (an episode needs two frames), got {max_steps}")
        self.max_steps = max_steps

    def _leaf(self, leaves: dict, key: str, what: str):
        if key not in leaves:
            raise InputError(f"{self.name}: no {what} key {key!r} in its steps; step keys are {sorted(leaves)}")
        return leaves[key]

    def _check_image(self, leaves: dict) -> tuple[int, ...]:
        feature = self._leaf(leaves, self.image_key, "image")
        shape = tuple(feature.shape)
        if np.dtype(feature.np_dtype) != np.uint8 or len(shape) != 3 or shape[-1] not in (1, 3, 4):
            raise InputError(f"image key {self.image_key!r} is {feature}, not an [H, W, 3] uint8 image; "
                             "pick the camera with --image-key")
        return shape

    def _check_actions(self, leaves: dict, keys: list[str]) -> tuple[list[str], list[str]]:
        """Expand keys that name a group (e.g. "action") into their leaves; name every element."""
        expanded, names = [], []
        for key in keys:
            group = sorted(k for k in leaves if k.startswith(key + "/"))
            for leaf in group or [key]:
                feature = self._leaf(leaves, leaf, "action")
                shape, dtype = tuple(feature.shape), np.dtype(feature.np_dtype)
                numeric = np.issubdtype(dtype, np.number) or dtype == np.bool_
                if None in shape or not numeric:
                    raise InputError(f"action key {leaf!r} is {feature}: actions must be fixed-size numbers")
                size = math.prod(shape)
                base = leaf.split("/")[-1]
                names += [base] if size == 1 else [f"{base}_{i}" for i in range(size)]
                expanded.append(leaf)
        return expanded, names

    def count(self, done: set[str]) -> int:
        return max(self.total - len(self._finished(done)), 0)

    def _finished(self, done: set[str]) -> list[int]:
        prefix = f"{self.name}/{self.split}/"
        return [int(o[len(prefix):].split(".")[0]) for o in done if o.startswith(prefix)]

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        # Resume at the last episode begun: it may have been split into parts, some unwritten.
        first = max(self._finished(done), default=0)
        ds = self.builder.as_dataset(split=self.split, decoders=self.decoders, shuffle_files=False)
        for index, episode in enumerate(ds.skip(first).take(max(self.total - first, 0)), start=first):
            steps = episode["steps"] if self.max_steps is None else episode["steps"].take(self.max_steps)
            for part, converted in enumerate(self._split(steps)):
                origin = f"{self.name}/{self.split}/{index}" + (f".{part}" if part else "")
                if origin not in done:
                    converted.attrs["origin"] = origin
                    yield converted

    def _split(self, steps) -> Iterator[Converted]:
        """One RLDS episode's steps -> store episodes, cut at is_first / after is_last."""
        import tensorflow_datasets as tfds

        frames, actions, language = [], [], None
        is_open = True  # steps after is_last are dropped until the next is_first
        for chunk in tfds.as_numpy(steps.batch(CHUNK_STEPS)):
            n = len(_get(chunk, self.image_key))
            resized = resize_video(to_rgb(_get(chunk, self.image_key)), self.size)
            vectors = np.concatenate(
                [np.asarray(_get(chunk, k), dtype=np.float32).reshape(n, -1) for k in self.action_keys], axis=1)
            first = chunk["is_first"] if "is_first" in self.boundaries else np.zeros(n, bool)
            last = chunk["is_last"] if "is_last" in self.boundaries else np.zeros(n, bool)
            texts = _get(chunk, self.language_key) if self.language_key else None
            for i in range(n):
                if first[i]:
                    if frames:
                        yield from self._episode(frames, actions, language)
                    frames, actions, language, is_open = [], [], None, True
                if not is_open:
                    continue
                frames.append(resized[i])
                actions.append(vectors[i])
                if language is None and texts is not None:
                    language = texts[i].decode() if isinstance(texts[i], bytes) else str(texts[i])
                if last[i]:
                    yield from self._episode(frames, actions, language)
                    frames, actions, language, is_open = [], [], None, False
        if frames:
            yield from self._episode(frames, actions, language)

    def _episode(self, frames: list, actions: list, language: str | None) -> Iterator[Converted]:
        if len(frames) < 2:
            return  # a one-step episode has no transition to learn from
        yield Converted(
            frames=np.stack(frames),
            actions=np.stack(actions[:-1]),  # the last step's action leads out of the episode
            action_names=self.action_names,
            attrs={"source": self.dataset, "robot": self.robot, "fps": self.fps,
                   "language": (language or "").strip(), "split": self.split},
        )
