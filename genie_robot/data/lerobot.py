"""LeRobotDataset (Hugging Face LeRobot) on disk <-> episode store, with pyarrow and PyAV alone.

Both on-disk versions are read from a local root (nothing is fetched from the Hub):
  meta/info.json       codebase_version, fps, robot_type, features, data_path, video_path
  v2.1: meta/episodes.jsonl, meta/tasks.jsonl; one parquet and one mp4 per camera per episode
        (data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet, ...)
  v3.0: meta/episodes/chunk-*/file-*.parquet (per episode: its data file and row range, each
        camera's video file and time range), meta/tasks.parquet; files hold many episodes
The frame parquet has one row per frame: `action`, `observation.state` and
`observation.environment_state` (both kept as the store's state), timestamp, frame_index,
episode_index, index, task_index; cameras are `video` features (mp4 files) or `image`
features (PNG bytes inside the parquet). The default camera is the first colour one; a depth
map is converted only when `camera` names it.

LeRobot records a frame's action beside the observation it was chosen from: action[t] moves
frame t to t+1. The store keeps T frames and the T-1 actions between them (the last, which
leads past the recording, is dropped), the same as for RLDS and robomimic.

`export_lerobot` writes any episode store as a v3.0 dataset: one data file and one H.264 mp4
per episode (valid v3.0 chunking; LeRobot packs several episodes per file only for size), the
episodes table with each episode's `stats/<feature>/<stat>` columns, the tasks table, and
stats.json (min, max, mean, std, count and quantiles q01..q99 of every feature, images per
channel, counted by images). `observation.state` holds what the robot measures (joints, hand,
gripper), `observation.environment_state` the objects' poses; other state (the controller's
target, velocities) is left out. Since the store has no action after the last frame, the
exported last frame's action repeats the one before."""
from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.convert import Converted, check_size
from genie_robot.data.store import EpisodeStore
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError, StoreError
from genie_robot.extras import require
from genie_robot.media import encode_video

VERSIONS = ("v2.0", "v2.1", "v3.0")
CHUNK_SIZE = 1000  # LeRobot's files per chunk folder
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EXPORT_CAMERA = "observation.images.main"
STATE, ENVIRONMENT = "observation.state", "observation.environment_state"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not valid JSON ({exc}); the dataset's metadata is damaged") from exc


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise StoreError(f"{path} is missing; a LeRobot v2.1 dataset lists its episodes and tasks there")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line)) if line.strip() else None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}:{number} is not valid JSON ({exc}); the dataset's metadata is damaged") from exc
    return rows


def _flatten(names) -> list:
    if isinstance(names, dict):  # {"motors": [...]} in v2.x files: the groups' names in order
        return [n for group in names.values() for n in _flatten(group)]
    if isinstance(names, (list, tuple)):  # [["x", "y"]] (lerobot/pusht): one list per axis of the shape
        return [n for item in names for n in _flatten(item)]
    return [names]


def _names(root: Path, key: str, feature: dict, dim: int) -> list[str] | None:
    """A vector feature's element names, flattened from however info.json nests them; None
    where it gives none, an error where they do not name its `dim` values one each."""
    names = feature.get("names")
    if names is None:
        return None
    flat = [str(n) for n in _flatten(names)]
    if len(flat) != dim:
        raise StoreError(f"{root}/meta/info.json: feature {key!r} holds {dim} values but its names {names!r} name "
                         f"{len(flat)}; correct (or delete) its \"names\" there")
    return flat


def _is_depth(key: str, feature: dict) -> bool:
    """A depth map, as LeRobot flags one (info.is_depth_map, video.is_depth_map), or by its one
    channel or its name."""
    info, video_info = feature.get("info") or {}, feature.get("video_info") or {}
    shape = feature.get("shape") or []
    return bool(info.get("is_depth_map") or info.get("video.is_depth_map") or video_info.get("video.is_depth_map")
                or (len(shape) == 3 and shape[-1] == 1) or "depth" in key.lower())


class LeRobotReader:
    def __init__(self, root: str | Path, size: int = 64, camera: str | None = None, action_key: str = "action"):
        self.root, self.size = Path(root), check_size(size)
        self.pq = require("pyarrow.parquet")
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise InputError(f"{self.root} is not a LeRobotDataset root: no meta/info.json (pass the folder that "
                             "holds meta/, data/ and videos/)")
        self.info = info = _read_json(info_path)
        self.version = str(info.get("codebase_version"))
        if self.version not in VERSIONS:
            raise InputError(f"{self.root}: LeRobotDataset version {self.version!r} is not one this reader knows "
                             f"({', '.join(VERSIONS)}); convert it with LeRobot's own conversion scripts first")
        features = info.get("features", {})
        cameras = [k for k, f in features.items() if f.get("dtype") in ("video", "image")]
        if not cameras:
            raise InputError(f"{self.root} has no camera (no video or image feature); features: {sorted(features)}")
        if camera is None:
            colour = [k for k in cameras if not _is_depth(k, features[k])]
            if not colour:
                raise InputError(f"{self.root}'s cameras are all depth maps ({', '.join(cameras)}); pass --camera NAME "
                                 "to convert one as video anyway")
            camera = colour[0]
        self.camera = camera
        if self.camera not in cameras:
            raise InputError(f"{self.root} has no camera {self.camera!r}; cameras: {', '.join(cameras)}")
        self.is_video = features[self.camera]["dtype"] == "video"
        if action_key not in features:
            raise InputError(f"{self.root} has no action feature {action_key!r}; features: {', '.join(sorted(features))}")
        self.action_key = action_key
        dim = int(np.prod(features[action_key]["shape"]))
        self.action_names = _names(self.root, action_key, features[action_key], dim) or [f"{action_key}_{i}" for i in range(dim)]
        self.state_keys = [k for k in (STATE, ENVIRONMENT) if k in features]  # kept as the store's state/<key>
        if not isinstance(info.get("fps"), (int, float)) or info["fps"] <= 0:
            raise StoreError(f"{info_path} has no valid fps ({info.get('fps')!r}); the metadata is damaged")
        self.fps = float(info["fps"])
        self.robot = info.get("robot_type") or "lerobot"
        self.episodes_meta = self._v3_episodes() if self.version == "v3.0" else self._v2_episodes()
        if not self.episodes_meta:
            raise StoreError(f"{self.root} lists no episodes; nothing to convert")
        needed = ["episode_index", "length"] + (["data/chunk_index", "data/file_index", "dataset_from_index",
                                                 "dataset_to_index"] if self.version == "v3.0" else [])
        if self.version == "v3.0" and self.is_video:
            needed += [f"videos/{self.camera}/{k}" for k in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
        if missing := [k for k in needed if k not in self.episodes_meta[0]]:
            raise StoreError(f"{self.root}: the episode table lacks {missing}; the metadata is damaged or of another version")
        self._cached: tuple[Path, dict] | None = None  # the data file last read: episodes in order share it

    # ------------------------------------------------------------------ metadata
    def _v2_episodes(self) -> list[dict]:
        return sorted(_read_jsonl(self.root / "meta" / "episodes.jsonl"), key=lambda e: e["episode_index"])

    def _v3_episodes(self) -> list[dict]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise StoreError(f"{self.root}/meta/episodes holds no chunk-*/file-*.parquet; a v3.0 dataset lists its "
                             "episodes there")
        return sorted((row for f in files for row in self._read_table(f).to_pylist()), key=lambda e: e["episode_index"])

    def _read_table(self, path: Path, columns: list[str] | None = None):
        pa = require("pyarrow")
        try:
            return self.pq.read_table(path, columns=columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"{path} cannot be read as parquet ({exc}); re-download the dataset") from exc
        except KeyError as exc:
            raise StoreError(f"{path} lacks the column {exc}; the dataset's files disagree with meta/info.json") from exc

    def _data_path(self, meta: dict) -> Path:
        if self.version == "v3.0":
            return self.root / self.info["data_path"].format(chunk_index=meta["data/chunk_index"],
                                                             file_index=meta["data/file_index"])
        return self.root / self.info["data_path"].format(**self._v2_file(meta))

    def _video_location(self, meta: dict) -> tuple[Path, float, float | None]:
        """(mp4 file, first timestamp, end timestamp or None for the whole file)."""
        if self.version == "v3.0":
            key = f"videos/{self.camera}"
            path = self.info["video_path"].format(video_key=self.camera, chunk_index=meta[f"{key}/chunk_index"],
                                                  file_index=meta[f"{key}/file_index"])
            return self.root / path, float(meta[f"{key}/from_timestamp"]), float(meta[f"{key}/to_timestamp"])
        return self.root / self.info["video_path"].format(video_key=self.camera, **self._v2_file(meta)), 0.0, None

    def _v2_file(self, meta: dict) -> dict:
        """v2.1's per-episode file names: episode index and its chunk folder."""
        index = meta["episode_index"]
        return {"episode_chunk": index // self.info.get("chunks_size", CHUNK_SIZE), "episode_index": index}

    # ------------------------------------------------------------------ episodes
    def _origin(self, meta: dict) -> str:
        return f"{self.root.name}:episode_{meta['episode_index']:06d}"

    def count(self, done: set[str]) -> int:
        return sum(self._origin(m) not in done for m in self.episodes_meta)

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        for meta in self.episodes_meta:
            if self._origin(meta) not in done:
                yield self._episode(meta)

    def _rows(self, meta: dict) -> dict:
        """This episode's rows of the columns the store keeps, checked against its length."""
        path = self._data_path(meta)
        if not path.is_file():
            raise StoreError(f"{path} is missing: episode {meta['episode_index']}'s frames are listed but not there")
        if self._cached is None or self._cached[0] != path:
            names = ["episode_index", "index", self.action_key, *self.state_keys, None if self.is_video else self.camera]
            self._cached = path, self._read_table(path, [n for n in names if n is not None])
        table = self._cached[1]
        if self.version == "v3.0":
            offset = meta["dataset_from_index"] - table.column("index")[0].as_py()
            table = table.slice(max(offset, 0), meta["dataset_to_index"] - meta["dataset_from_index"])
        rows = {name: table.column(name).to_pylist() for name in table.column_names}
        if len(rows["episode_index"]) != meta["length"] or set(rows["episode_index"]) != {meta["episode_index"]}:
            raise StoreError(f"{path}: episode {meta['episode_index']} should have {meta['length']} rows there, found "
                             f"{len(rows['episode_index'])} with episode_index {sorted(set(rows['episode_index']))}; "
                             "the episode table and the data disagree")
        return rows

    def _episode(self, meta: dict) -> Converted:
        rows = self._rows(meta)
        length = len(rows["episode_index"])
        frames = self._video_frames(meta, length) if self.is_video else self._image_frames(rows[self.camera])
        actions = np.asarray(rows[self.action_key], np.float32).reshape(length, -1)[:-1]
        state = {key: np.asarray(rows[key], np.float32).reshape(length, -1) for key in self.state_keys} or None
        tasks = meta.get("tasks") or []  # the episode's task texts
        language = tasks[0] if tasks and isinstance(tasks[0], str) else None
        attrs = {"source": f"lerobot:{self.root.name}", "robot": self.robot, "fps": self.fps, "split": "train",
                 "origin": self._origin(meta), "language": language}
        return Converted(resize_video(frames, self.size), actions, self.action_names, attrs, state)

    def _video_frames(self, meta: dict, length: int) -> np.ndarray:
        av = require("av")
        path, start, end = self._video_location(meta)
        if not path.is_file():
            raise StoreError(f"{path} is missing: episode {meta['episode_index']}'s {self.camera} video")
        try:
            frames = self._decode(av, path, start, end, length)
        except av.FFmpegError as exc:
            raise StoreError(f"{path} cannot be decoded ({exc}); re-download the dataset") from exc
        if len(frames) < length:
            raise StoreError(f"{path}: episode {meta['episode_index']} has {length} frames in its parquet but only "
                             f"{len(frames)} in the video; the video is truncated (re-download or re-encode it)")
        return np.stack(frames)

    def _decode(self, av, path: Path, start: float, end: float | None, length: int) -> list[np.ndarray]:
        """Up to `length` frames stamped in [start, end), from the keyframe before start."""
        frames = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if start > 0:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            half_frame = 0.5 / self.fps
            for frame in container.decode(stream):
                time = float(frame.pts * stream.time_base)
                if time < start - half_frame:
                    continue
                if (end is not None and time >= end - half_frame) or len(frames) == length:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
        return frames

    def _image_frames(self, cells: list) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            return np.stack([np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB")) for cell in cells])
        except (TypeError, KeyError, UnidentifiedImageError) as exc:
            raise StoreError(f"{self.root}: an image of {self.camera} is not embedded PNG/JPEG bytes ({exc}); images "
                             "stored as separate files are not supported, convert the dataset to video") from exc


# ---------------------------------------------------------------------- export
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # the ones LeRobot computes
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                  "task_index": "int64"}
# What a robot measures of itself, in the order observation.state holds it: joints, hand
# position (and orientation), gripper. Names of the MuJoCo arm's store, robosuite's robot0_*
# (robomimic stores), and a LeRobot dataset's own state on a round trip.
ROBOT_STATE = (r"joint_pos|robot\d+_joint_pos", r"ee_pos|robot\d+_eef_pos", r"ee_quat|robot\d+_eef_quat",
               r"gripper|robot\d+_gripper_qpos", re.escape(STATE))
# Task texts for stores without language, by source: what the recording policy did.
SOURCE_TASKS = {"mujoco": "Move the Kinova Jaco arm's hand over the table, pushing the red cube, the blue cylinder "
                          "or the soft cube, or exploring with single moves and gripper actions"}


@dataclass(frozen=True)
class Exported:
    info: dict  # the written meta/info.json
    left_out: dict[str, str]  # store state keys not exported -> why
    constant: list[str]  # state / environment elements with one value over the whole export (kept)


def export_lerobot(data: str | Path, out: str | Path, fps: float | None = None, task: str | None = None,
                   progress: bool = True) -> Exported:
    """Write the store at `data` as a LeRobot v3.0 dataset in the new folder `out`. Every
    episode's task is `task`, else its language, else a sentence for its source (SOURCE_TASKS).
    Written to `<out>.partial` and renamed into place at the end; on any error the partial
    folder is removed: nothing half-written is left."""
    out = Path(out)
    if task is not None and not task.strip():
        raise InputError("--task is empty; give the instruction a language-conditioned policy should follow")
    if out.exists():
        raise InputError(f"{out} already exists; export into a new folder")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        raise InputError(f"{tmp} exists (an earlier export was killed?); remove it and export again")
    with EpisodeStore(data) as store:
        plan = _ExportPlan.of(store, data, fps, task)
        try:
            exported = _write_dataset(plan, tmp, progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    tmp.rename(out)
    return exported


def _robot_rank(key: str) -> int | None:
    return next((rank for rank, pattern in enumerate(ROBOT_STATE) if re.fullmatch(pattern, key)), None)


def _is_environment(key: str) -> bool:
    """Object poses: <object>_pose (xyz + quaternion), a soft body's <object>_vertices (exported
    as their centroid), robosuite's `object` vector, a LeRobot dataset's environment state."""
    return key.endswith(("_pose", "_vertices")) or key in ("object", ENVIRONMENT)


def _left_out_reason(key: str) -> str:
    if key == "ee_target":
        return "the controller's target, integrated from the actions: it would leak the action into the state"
    if key.endswith("_vel"):
        return "a velocity: observation.state holds what the robot measures of its pose (joints, hand, gripper)"
    return "neither what the robot measures (joints, hand, gripper) nor an object pose"


def _element_names(key: str, width: int) -> list[str]:
    """gripper; ee_pos_x..z; red_cube_x..z, _qw.._qz; soft_cube_x..z (centroid); joint_pos_0.."""
    if width == 1:
        return [key]
    base = key.removesuffix("_pose").removesuffix("_vertices")
    if width == 3 and key.endswith(("_pos", "_vertices")):
        return [f"{base}_{axis}" for axis in "xyz"]
    if width == 7 and key.endswith("_pose"):
        return [f"{base}_{axis}" for axis in ("x", "y", "z", "qw", "qx", "qy", "qz")]
    return [f"{key}_{i}" for i in range(width)]


@dataclass(frozen=True)
class _Vector:
    """One exported vector feature: store state keys concatenated per frame."""

    keys: list[str]
    names: list[str]

    @staticmethod
    def read(episode, key: str) -> np.ndarray:
        value = np.asarray(episode.read_state(key), np.float32)
        return value.mean(1) if key.endswith("_vertices") else value.reshape(episode.num_frames, -1)

    def values(self, episode) -> np.ndarray:
        values = np.concatenate([self.read(episode, k) for k in self.keys], 1)
        if values.shape[1] != len(self.names):
            raise StoreError(f"episode {episode.key}: state {self.keys} has {values.shape[1]} values per frame, "
                             f"episode 0 has {len(self.names)}; one LeRobot feature has one width")
        return values


@dataclass
class _ExportPlan:
    """What an exportable store holds, checked before anything is written."""

    episodes: list
    action_names: list[str]
    fps: float
    vectors: dict[str, _Vector]  # observation.state / observation.environment_state, those present
    left_out: dict[str, str]
    task: str | None

    @classmethod
    def of(cls, store: EpisodeStore, data, fps: float | None, task: str | None) -> _ExportPlan:
        episodes = list(store)
        if not episodes:
            raise StoreError(f"{data} holds no episodes; nothing to export")
        names = {tuple(e.action_names) if e.action_names else None for e in episodes}
        if len(names) != 1 or None in names:
            raise StoreError(f"{data}: every episode needs actions with one layout to export (found "
                             f"{sorted(map(str, names))}); LeRobot datasets hold one action vector per frame")
        shapes = {e.frame_shape for e in episodes}
        if len(shapes) != 1:
            raise StoreError(f"{data} mixes frame sizes {sorted(shapes)}; one LeRobot camera has one size")
        height, width, _ = shapes.pop()
        if height % 2 or width % 2:
            raise StoreError(f"{data}: frames of {height}x{width}; H.264 in yuv420p (what LeRobot decodes) needs even "
                             "sizes: convert the episodes at an even --size")
        if fps is None:
            rates = {float(e.attrs.get("fps", 0)) for e in episodes}
            if len(rates) != 1 or 0 in rates:
                raise InputError(f"{data}: episodes record frame rates {sorted(rates)} (0: none recorded); pass --fps")
            fps = rates.pop()
        first = episodes[0]
        everywhere = [k for k in first.state_keys if all(k in e.state_keys for e in episodes)]
        left_out = {k: "missing from some episodes" for e in episodes for k in e.state_keys if k not in everywhere}
        roles: dict[str, list[str]] = {STATE: [], ENVIRONMENT: []}
        for key in everywhere:
            ndim = first.read_state(key).ndim
            if _robot_rank(key) is not None and ndim == 2:
                roles[STATE].append(key)
            elif _is_environment(key) and ndim == (3 if key.endswith("_vertices") else 2):
                roles[ENVIRONMENT].append(key)
            else:
                left_out[key] = _left_out_reason(key)
        roles[STATE].sort(key=lambda k: (_robot_rank(k), k))
        vectors = {feature: _Vector(keys, [n for k in keys for n in _element_names(k, _Vector.read(first, k).shape[1])])
                   for feature, keys in roles.items() if keys}
        return cls(episodes, list(names.pop()), fps, vectors, left_out, task)

    def task_of(self, episode) -> str:
        source, robot = getattr(episode, "source", None), getattr(episode, "robot", None) or "robot"
        if self.task or getattr(episode, "language", None):
            return self.task or episode.language
        if source in SOURCE_TASKS:
            return SOURCE_TASKS[source]
        return f"Control the {robot} as in the {source} recordings" if source else f"Control the {robot} as recorded"


def _write_dataset(plan: _ExportPlan, root: Path, progress: bool) -> Exported:
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    tasks: dict[str, int] = {}
    rows, totals = [], _Totals()
    index = 0
    for number, episode in enumerate(tqdm(plan.episodes, desc="export episodes", unit="ep", disable=not progress)):
        frames = episode.read_frames()
        length = len(frames)
        actions = np.asarray(episode.read_actions(), np.float32)
        task = plan.task_of(episode)
        task_index = tasks.setdefault(task, len(tasks))
        features = {"action": np.concatenate([actions, actions[-1:]]),  # the last frame has no action of its own
                    **{name: vector.values(episode) for name, vector in plan.vectors.items()},
                    "timestamp": np.arange(length, dtype=np.float32) / np.float32(plan.fps),
                    "frame_index": np.arange(length, dtype=np.int64),
                    "episode_index": np.full(length, number, np.int64),
                    "index": np.arange(index, index + length, dtype=np.int64),
                    "task_index": np.full(length, task_index, np.int64)}
        columns = {name: pa.array(list(values), pa.list_(pa.float32(), values.shape[1])) if values.ndim == 2
                   else pa.array(values) for name, values in features.items()}
        chunk, file = divmod(number, CHUNK_SIZE)
        data_path = root / V3_DATA_PATH.format(chunk_index=chunk, file_index=file)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), data_path)
        write_h264(root / V3_VIDEO_PATH.format(video_key=EXPORT_CAMERA, chunk_index=chunk, file_index=file), frames, plan.fps)
        stats = totals.add(features, frames)
        rows.append({"episode_index": number, "tasks": [task], "length": length,
                     "data/chunk_index": chunk, "data/file_index": file,
                     "dataset_from_index": index, "dataset_to_index": index + length,
                     f"videos/{EXPORT_CAMERA}/chunk_index": chunk, f"videos/{EXPORT_CAMERA}/file_index": file,
                     f"videos/{EXPORT_CAMERA}/from_timestamp": 0.0,
                     f"videos/{EXPORT_CAMERA}/to_timestamp": length / plan.fps,
                     "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                     **{f"stats/{name}/{stat}": value for name, values in stats.items() for stat, value in values.items()}})
        index += length
    info = _info(plan, len(rows), index, len(tasks))
    summary = totals.summary()
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "stats.json").write_text(json.dumps(summary, indent=4))
    pq.write_table(pa.Table.from_pylist(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(tasks_table(pa, tasks), root / "meta" / "tasks.parquet")
    constant = [name for feature, vector in plan.vectors.items()
                for name, std in zip(vector.names, summary[feature]["std"]) if std == 0]
    return Exported(info, plan.left_out, constant)


def _info(plan: _ExportPlan, episodes: int, frames: int, tasks: int) -> dict:
    """meta/info.json as LeRobot v3.0 writes it: fps an integer where it is one (LeRobot's
    converter casts it), and on every non-video feature."""
    fps = int(plan.fps) if float(plan.fps).is_integer() else plan.fps
    height, width, _ = plan.episodes[0].frame_shape
    vector = lambda names: {"dtype": "float32", "shape": [len(names)], "names": names, "fps": fps}
    features = {
        EXPORT_CAMERA: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                        "info": {"video.height": height, "video.width": width, "video.codec": "h264",
                                 "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                 "video.channels": 3, "has_audio": False}},
        "action": vector(plan.action_names),
        **{name: vector(v.names) for name, v in plan.vectors.items()},
        **{name: {"dtype": dtype, "shape": [1], "names": None, "fps": fps} for name, dtype in INDEX_FEATURES.items()},
    }
    robot = getattr(plan.episodes[0], "robot", None) or "genie_robot"
    return {"codebase_version": "v3.0", "robot_type": robot, "total_episodes": episodes, "total_frames": frames,
            "total_tasks": tasks, "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{episodes}"},
            "data_path": V3_DATA_PATH, "video_path": V3_VIDEO_PATH, "features": features}


def tasks_table(pa, tasks: dict[str, int]):
    """LeRobot writes tasks with pandas, the task text as the frame's index; the same table
    and pandas metadata here, so that `pandas.read_parquet` gives LeRobot that index back."""
    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()),
                      "__index_level_0__": pa.array(list(tasks), pa.string())})
    pandas_meta = {"index_columns": ["__index_level_0__"], "column_indexes": [], "pandas_version": "2.2.3",
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__}}
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def write_h264(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 in yuv420p, a keyframe every 2 frames, as LeRobot encodes for random access."""
    encode_video(path, frames, fps, options={"crf": "15", "g": "2"})


def vector_stats(values: np.ndarray) -> dict[str, list]:
    """LeRobot's statistics of a feature over frames [N] or [N, D], per dimension: min, max,
    mean, std, the QUANTILES (exact, numpy's linear interpolation; LeRobot estimates them from
    5000-bin histograms) and count (frames)."""
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    stats = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0),
             **{key: np.quantile(values, q, axis=0) for key, q in QUANTILES.items()}}
    return {**{key: value.tolist() for key, value in stats.items()}, "count": [len(values)]}


def pixel_stats(histogram: np.ndarray, images: int) -> dict[str, list]:
    """The same statistics of uint8 RGB images per channel, in [0, 1] and shaped [3, 1, 1] as
    LeRobot keeps them, from the count of each level [3, 256]: exact, quantiles included (the
    values at the ranks numpy's linear interpolation reads). count: images, as LeRobot counts."""
    levels = np.arange(256) / 255
    pixels = histogram.sum(1)
    mean = histogram @ levels / pixels
    std = np.sqrt(np.maximum(histogram @ levels**2 / pixels - mean**2, 0))
    seen = histogram > 0
    cumulative = histogram.cumsum(1)

    def at(rank: np.ndarray) -> np.ndarray:  # per channel, the value of that rank (0-based) in sorted order
        return levels[[np.searchsorted(c, r, side="right") for c, r in zip(cumulative, rank)]]

    stats = {"min": levels[seen.argmax(1)], "max": levels[255 - seen[:, ::-1].argmax(1)], "mean": mean, "std": std}
    for key, q in QUANTILES.items():
        position = q * (pixels - 1)
        low = np.floor(position)
        stats[key] = at(low) + (position - low) * (at(np.minimum(low + 1, pixels - 1)) - at(low))
    return {**{key: value.reshape(3, 1, 1).tolist() for key, value in stats.items()}, "count": [int(images)]}


class _Totals:
    """Each episode's statistics as LeRobot writes them into its episodes table, and the
    whole export's (stats.json) from every frame: vectors kept, images as level counts."""

    def __init__(self):
        self.vectors: dict[str, list[np.ndarray]] = {}
        self.histogram, self.images = np.zeros((3, 256), np.int64), 0

    def add(self, features: dict[str, np.ndarray], frames: np.ndarray) -> dict[str, dict]:
        """One episode's features [T, ...] and uint8 frames [T, H, W, 3]; returns its statistics."""
        histogram = np.stack([np.bincount(frames[..., c].ravel(), minlength=256) for c in range(3)])
        self.histogram += histogram
        self.images += len(frames)
        for name, values in features.items():
            self.vectors.setdefault(name, []).append(values)
        return {EXPORT_CAMERA: pixel_stats(histogram, len(frames)), **{n: vector_stats(v) for n, v in features.items()}}

    def summary(self) -> dict[str, dict]:
        return {EXPORT_CAMERA: pixel_stats(self.histogram, self.images),
                **{name: vector_stats(np.concatenate(parts)) for name, parts in self.vectors.items()}}
