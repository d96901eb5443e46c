"""The episode store: every dataset becomes HDF5 episodes in this one layout.

    file attrs: format = "genie-robot-episodes", version = 1
    /episodes/<000000>/
        frames   uint8   [T, H, W, 3]   chunked by frame groups, blosc-lz4
        actions  float32 [T-1, A]       optional; attrs action_names (json list)
        state/*  float32 [T, ...]       optional ground truth
        masks    uint8   [T, H, W]      optional object ids
        attrs:   source, robot, fps, language, split, origin, camera (MuJoCo: the view rendered), complete

`actions[t]` is what moved frame t to frame t+1. An episode is visible to readers only
once its `complete` attribute is set and the file flushed, so a writer killed mid-episode
leaves every earlier episode readable; the next writer removes the partial one.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from genie_robot.data.transforms import as_size
from genie_robot.errors import InputError, StoreError

FORMAT = "genie-robot-episodes"
VERSION = 1
FRAME_CHUNK = 16  # frames per chunk: one 16-frame clip touches at most two chunks
# `origin` names where an episode came from (input file, dataset episode, generator seed);
# converters skip origins already in the store, which is how an interrupted conversion resumes.
EPISODE_ATTRS = ("source", "robot", "fps", "language", "split", "origin", "camera")
# Decompressed-chunk cache per open dataset; large enough for warm random clip reads.
_CHUNK_CACHE_BYTES = 256 * 1024 * 1024


def _compression() -> Mapping[str, Any]:
    return hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE)


def _open_h5(path: Path, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode, rdcc_nbytes=_CHUNK_CACHE_BYTES, rdcc_nslots=10007)
    except FileNotFoundError:
        raise StoreError(f"{path}: no such episode store; check the path") from None
    except OSError as exc:
        if "unable to lock" in str(exc).lower():
            raise StoreError(f"{path}: file is locked by another process writing it; wait for it or close it") from None
        raise StoreError(
            f"{path}: not a readable HDF5 file (truncated or corrupt: {exc}); re-copy or regenerate it"
        ) from None


def _check_header(path: Path, h5: h5py.File) -> None:
    fmt = h5.attrs.get("format")
    if fmt != FORMAT:
        raise StoreError(
            f"{path}: not a genie-robot episode store (format attr {fmt!r}); "
            "convert it first with `genie-robot data ...`"
        )
    version = int(h5.attrs.get("version", -1))
    if version != VERSION:
        raise StoreError(
            f"{path}: episode store version {version}, this genie-robot reads version {VERSION}; "
            "regenerate or convert the store with this version"
        )
    if "episodes" not in h5:
        raise StoreError(f"{path}: episode store has no /episodes group; the file is damaged, regenerate it")


@dataclass
class Episode:
    """One episode; frames, masks and state are read from disk only when asked for."""

    store: EpisodeStore
    key: str
    num_frames: int
    frame_shape: tuple[int, int, int]
    attrs: dict[str, Any]
    action_names: list[str] | None
    state_keys: list[str] = field(default_factory=list)
    has_masks: bool = False

    def _group(self) -> h5py.Group:
        return self.store._h5()["episodes"][self.key]

    def _dataset(self, name: str) -> h5py.Dataset:
        return self.store._dataset(self.key, name)

    @property
    def frames(self) -> np.ndarray:
        return self.read_frames()

    def read_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> np.ndarray:
        # A contiguous read then a numpy stride: HDF5 strided hyperslabs are ~100x slower.
        frames = self._dataset("frames")[start:stop]
        return frames[::step] if step != 1 else frames

    @property
    def actions(self) -> np.ndarray | None:
        return None if self.action_names is None else self.read_actions()

    def read_actions(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self._dataset("actions")[start:stop]

    @property
    def masks(self) -> np.ndarray | None:
        return self._group()["masks"][()] if self.has_masks else None

    @property
    def state(self) -> dict[str, np.ndarray]:
        return {k: self.read_state(k) for k in self.state_keys}

    def read_state(self, key: str) -> np.ndarray:
        """One state/* array, without reading the others (soft-body vertices are large)."""
        if key not in self.state_keys:
            raise StoreError(f"episode {self.key} has no state/{key}; it has {self.state_keys}")
        return self._group()["state"][key][()]

    @property
    def position_names(self) -> list[str]:
        """Names of the positions its recorded state holds (`state_positions`)."""
        return position_names(self.state_keys)

    def read_positions(self) -> np.ndarray:
        """float32 [T, Q, 3]: every frame's positions, in `position_names` order."""
        by_name = state_positions({key: self.read_state(key) for key in self.state_keys if position_name(key)})
        return np.stack([by_name[name] for name in self.position_names], axis=1).astype(np.float32)

    def __getattr__(self, name: str) -> Any:
        # source, robot, fps, language, split read as attributes.
        attrs = self.__dict__.get("attrs", {})
        if name in attrs:
            return attrs[name]
        raise AttributeError(name)


def position_name(state_key: str) -> str | None:
    """The position a state key records: the hand's (ee_pos), a rigid body's (<name>_pose: xyz
    then quaternion), a soft body's (<name>_vertices: its nodes' mean); None for other keys."""
    if state_key == "ee_pos":
        return "hand"
    for suffix in ("_pose", "_vertices"):
        if state_key.endswith(suffix):
            return state_key[: -len(suffix)]
    return None


def position_names(state_keys) -> list[str]:
    """The hand first, then the objects by name."""
    names = {position_name(key) for key in state_keys} - {None}
    return sorted(names, key=lambda name: (name != "hand", name))


def state_positions(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Positions (metres, float64 [..., 3]) by name from recorded state (one frame's, every
    frame's, or `ArmWorld.state()` live): what a task scores and a state probe learns."""
    out = {}
    for key, value in state.items():
        name, value = position_name(key), np.asarray(value, np.float64)
        if name is not None:
            out[name] = value.mean(-2) if key.endswith("_vertices") else value[..., :3]
    return {name: out[name] for name in position_names(state)}


class EpisodeStore:
    """Read-only view of an episode store: `len(store)`, `store[i]`, iteration.

    The HDF5 handle opens lazily and per process, so a store can be handed to DataLoader
    workers (h5py handles must not cross a fork)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"{self.path}: no such episode store; check the path")
        if self.path.is_dir():
            stores = sorted(p.name for p in self.path.glob("*.h5"))[:3]
            raise StoreError(f"{self.path} is a directory, not an episode store; give an .h5 file"
                             + (f" inside it ({', '.join(stores)})" if stores else ""))
        self._file: h5py.File | None = None
        self._pid = -1
        h5 = self._h5()
        _check_header(self.path, h5)
        self.episodes = self._scan(h5)

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = _open_h5(self.path, "r")
            self._pid = os.getpid()
            self._datasets = {}
        return self._file

    def _dataset(self, key: str, name: str) -> h5py.Dataset:
        """Dataset handles cached per process: h5py path lookups cost more than a warm read."""
        h5 = self._h5()
        handle = self._datasets.get((key, name))
        if handle is None:
            handle = self._datasets[(key, name)] = h5["episodes"][key][name]
        return handle

    def _scan(self, h5: h5py.File) -> list[Episode]:
        episodes = []
        for key in sorted(h5["episodes"].keys()):
            group = h5["episodes"][key]
            if not group.attrs.get("complete", False):
                continue  # a writer died mid-episode; invisible to readers
            frames = group["frames"]
            names = json.loads(group["actions"].attrs["action_names"]) if "actions" in group else None
            attrs = {k: _decode(group.attrs[k]) for k in EPISODE_ATTRS if k in group.attrs}
            episodes.append(
                Episode(
                    store=self,
                    key=key,
                    num_frames=frames.shape[0],
                    frame_shape=tuple(frames.shape[1:]),
                    attrs=attrs,
                    action_names=names,
                    state_keys=sorted(group["state"].keys()) if "state" in group else [],
                    has_masks="masks" in group,
                )
            )
        return episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> Episode:
        if not -len(self) <= index < len(self):
            raise IndexError(f"episode {index} out of range: {self.path} has {len(self)} episodes")
        return self.episodes[index]

    def episode(self, index: int) -> Episode:
        """Episode `index` as a user names it (0-based, no negative indexing), or InputError."""
        if not 0 <= index < len(self):
            raise InputError(f"episode {index} out of range: {self.path} has {len(self)} episodes (0..{len(self) - 1})")
        return self.episodes[index]

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_pid"], state["_datasets"] = None, -1, {}
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def num_frames(self) -> int:
        return sum(e.num_frames for e in self.episodes)

    def frame_shapes(self) -> set[tuple[int, int, int]]:
        return {e.frame_shape for e in self.episodes}

    def resolution_note(self, size: int | tuple[int, int]) -> str | None:
        """How frames reach a model working at size x size, the same for training and every
        command that reads a store with a model: larger frames are centre-cropped and
        downscaled (the note says so), smaller ones refused (upscaling invents detail)."""
        height, width = as_size(size)
        shapes = sorted({shape[:2] for shape in self.frame_shapes()})
        small = [f"{h}x{w}" for h, w in shapes if h < height or w < width]
        if small:
            raise StoreError(f"{self.path}: frames are {', '.join(small)}, smaller than the model's {height}x{width}; "
                             f"convert the episodes at --size {max(height, width)} or larger")
        if shapes == [(height, width)]:
            return None
        return (f"{self.path}: frames of {', '.join(f'{h}x{w}' for h, w in shapes)} are centre-cropped and "
                f"downscaled to the model's {height}x{width}, as in training")


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class EpisodeWriter:
    """Appends validated episodes to a store, creating it if needed.

    Each episode is written, marked complete and flushed before `append` returns."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give the episode store's file name, e.g. {self.path / 'episodes.h5'}")
        if overwrite and self.path.exists():
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._file = _open_h5(self.path, "r+")
            _check_header(self.path, self._file)
            self._drop_incomplete()
        else:
            self._file = _open_h5(self.path, "w")
            self._file.attrs["format"] = FORMAT
            self._file.attrs["version"] = VERSION
            self._file.create_group("episodes")
            self._file.flush()

    def _drop_incomplete(self) -> None:
        episodes = self._file["episodes"]
        for key in list(episodes.keys()):
            if not episodes[key].attrs.get("complete", False):
                del episodes[key]
        self._file.flush()

    def __len__(self) -> int:
        return len(self._file["episodes"])

    def origins(self) -> set[str]:
        """The `origin` attribute of every episode already written."""
        return self.attribute_values("origin")

    def attribute_values(self, name: str) -> set:
        """The distinct values of attribute `name` (e.g. fps) over the episodes already written."""
        return {_decode(g.attrs[name]) for g in self._file["episodes"].values() if name in g.attrs}

    def append(
        self,
        frames: np.ndarray,
        actions: np.ndarray | None = None,
        action_names: list[str] | None = None,
        state: Mapping[str, np.ndarray] | None = None,
        masks: np.ndarray | None = None,
        **attrs: Any,
    ) -> int:
        """Write one episode; returns its index. Raises StoreError before writing anything
        if shapes or dtypes are wrong."""
        frames, actions, state, masks = _validate_episode(frames, actions, action_names, state, masks, attrs)
        episodes = self._file["episodes"]
        index = len(episodes)
        group = episodes.create_group(f"{index:06d}")
        t, h, w, _ = frames.shape
        group.create_dataset(
            "frames", data=frames, chunks=(min(FRAME_CHUNK, t), h, w, 3), **_compression()
        )
        if actions is not None:
            ds = group.create_dataset("actions", data=actions)
            ds.attrs["action_names"] = json.dumps(list(action_names))
        if state:
            sg = group.create_group("state")
            for key, value in state.items():
                sg.create_dataset(key, data=value)
        if masks is not None:
            group.create_dataset(
                "masks", data=masks, chunks=(min(FRAME_CHUNK, t), h, w), **_compression()
            )
        for key, value in attrs.items():
            if value is not None:
                group.attrs[key] = value
        group.attrs["complete"] = True
        self._file.flush()
        return index

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _validate_episode(frames, actions, action_names, state, masks, attrs):
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise StoreError(f"frames must be uint8 RGB, got dtype {frames.dtype}; convert with (x * 255).round().astype(np.uint8)")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise StoreError(f"frames must have shape [T, H, W, 3], got {list(frames.shape)}")
    t = frames.shape[0]
    if t < 2:
        raise StoreError(f"an episode needs at least 2 frames, got {t}")
    if actions is not None:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim == 1:
            actions = actions[:, None]
        if actions.ndim != 2 or actions.shape[0] != t - 1:
            raise StoreError(
                f"actions must have shape [T-1, A] = [{t - 1}, A] (actions[t] moves frame t to t+1), "
                f"got {list(actions.shape)}"
            )
        if action_names is None or len(action_names) != actions.shape[1]:
            raise StoreError(
                f"action_names must name each of the {actions.shape[1]} action dims, got {action_names}"
            )
    state = {k: np.asarray(v, dtype=np.float32) for k, v in (state or {}).items()}
    for key, value in state.items():
        if value.shape[:1] != (t,):
            raise StoreError(f"state/{key} must have T={t} rows (one per frame), got shape {list(value.shape)}")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.dtype != np.uint8 or masks.shape != frames.shape[:3]:
            raise StoreError(
                f"masks must be uint8 [T, H, W] = {list(frames.shape[:3])}, got {masks.dtype} {list(masks.shape)}"
            )
    unknown = set(attrs) - set(EPISODE_ATTRS)
    if unknown:
        raise StoreError(f"unknown episode attributes {sorted(unknown)}; allowed: {EPISODE_ATTRS}")
    return frames, actions, state, masks
