"""LeRobotDataset (Hugging Face LeRobot) on disk <-> episode store, with pyarrow and PyAV alone.

Both on-disk versions are read from a local root (nothing is fetched from the Hub):
  meta/info.json       codebase_version, fps, robot_type, features, data_path, video_path
  v2.1: meta/episodes.jsonl, meta/tasks.jsonl; one parquet and one mp4 per camera per episode
        (data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet, ...)
  v3.0: meta/episodes/chunk-*/file-*.parquet (per episode: its data file and row range, each
        camera's video file and time range), meta/tasks.parquet; files hold many episodes
The frame parquet has one row per frame: `action`, `observation.state`, timestamp,
frame_index, episode_index, index, task_index; cameras are `video` features (mp4 files) or
`image` features (PNG bytes inside the parquet).

LeRobot records a frame's action beside the observation it was chosen from: action[t] moves
frame t to t+1. The store keeps T frames and the T-1 actions between them (the last, which
leads past the recording, is dropped), the same as for RLDS and robomimic.

`export_lerobot` writes any episode store as a v3.0 dataset: one data file and one H.264 mp4
per episode (valid v3.0 chunking; LeRobot packs several episodes per file only for size), the
episodes and tasks tables, and stats.json for action and state normalisation. Since the store
has no action after the last frame, the exported last frame's action repeats the one before."""
from __future__ import annotations

import io
import json
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


def _names(feature: dict) -> list[str] | None:
    """A feature's element names: LeRobot writes a list, or {"motors": [...]} in older files."""
    names = feature.get("names")
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else None


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
        self.camera = camera or cameras[0]
        if self.camera not in cameras:
            raise InputError(f"{self.root} has no camera {self.camera!r}; cameras: {', '.join(cameras)}")
        self.is_video = features[self.camera]["dtype"] == "video"
        if action_key not in features:
            raise InputError(f"{self.root} has no action feature {action_key!r}; features: {', '.join(sorted(features))}")
        self.action_key = action_key
        dim = int(np.prod(features[action_key]["shape"]))
        self.action_names = _names(features[action_key]) or [f"{action_key}_{i}" for i in range(dim)]
        self.state_key = "observation.state" if "observation.state" in features else None
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
            names = ["episode_index", "index", self.action_key, self.state_key, None if self.is_video else self.camera]
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
        state = ({"observation.state": np.asarray(rows[self.state_key], np.float32).reshape(length, -1)}
                 if self.state_key else None)
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
def export_lerobot(data: str | Path, out: str | Path, fps: float | None = None, progress: bool = True) -> dict:
    """Write the store at `data` as a LeRobot v3.0 dataset in the new folder `out`; returns its
    info.json. Written to `<out>.partial` and renamed into place at the end; on any error the
    partial folder is removed: nothing half-written is left."""
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} already exists; export into a new folder")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        raise InputError(f"{tmp} exists (an earlier export was killed?); remove it and export again")
    with EpisodeStore(data) as store:
        plan = _ExportPlan.of(store, data, fps)
        try:
            info = _write_dataset(plan, tmp, progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    tmp.rename(out)
    return info


@dataclass
class _ExportPlan:
    """What an exportable store holds, checked before anything is written."""

    episodes: list
    action_names: list[str]
    fps: float
    state_keys: list[str]  # per-frame state vectors present in every episode, concatenated in this order
    state_names: list[str]

    @classmethod
    def of(cls, store: EpisodeStore, data, fps: float | None) -> _ExportPlan:
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
        # Per-frame vectors only (soft-body vertices [T, V, 3] are not robot state), in every episode.
        first = episodes[0]
        state_keys = [k for k in sorted(first.state_keys) if first.read_state(k).ndim == 2
                      and all(k in e.state_keys for e in episodes)]
        widths = {k: first.read_state(k).shape[1] for k in state_keys}
        state_names = [f"{k}_{i}" for k in state_keys for i in range(widths[k])]
        return cls(episodes, list(names.pop()), fps, state_keys, state_names)

    def state(self, episode) -> np.ndarray | None:
        if not self.state_keys:
            return None
        parts = [np.asarray(episode.read_state(k), np.float32).reshape(episode.num_frames, -1) for k in self.state_keys]
        state = np.concatenate(parts, 1)
        if state.shape[1] != len(self.state_names):
            raise StoreError(f"episode {episode.key}: state {self.state_keys} has {state.shape[1]} values per frame, "
                             f"episode 0 has {len(self.state_names)}; one LeRobot feature has one width")
        return state


def _write_dataset(plan: _ExportPlan, root: Path, progress: bool) -> dict:
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    tasks: dict[str, int] = {}
    rows, stats = [], _Stats()
    index = 0
    for number, episode in enumerate(tqdm(plan.episodes, desc="export episodes", unit="ep", disable=not progress)):
        frames = episode.read_frames()
        length = len(frames)
        actions = np.asarray(episode.read_actions(), np.float32)
        actions = np.concatenate([actions, actions[-1:]])  # the last frame has no action of its own
        state = plan.state(episode)
        task = getattr(episode, "language", None) or getattr(episode, "source", None) or "episode"
        task_index = tasks.setdefault(task, len(tasks))
        chunk, file = divmod(number, CHUNK_SIZE)
        vector = lambda values: pa.array(list(values), pa.list_(pa.float32(), values.shape[1]))
        columns = {"action": vector(actions), **({"observation.state": vector(state)} if state is not None else {}),
                   "timestamp": pa.array(np.arange(length, dtype=np.float32) / np.float32(plan.fps)),
                   "frame_index": pa.array(np.arange(length, dtype=np.int64)),
                   "episode_index": pa.array(np.full(length, number, np.int64)),
                   "index": pa.array(np.arange(index, index + length, dtype=np.int64)),
                   "task_index": pa.array(np.full(length, task_index, np.int64))}
        data_path = root / V3_DATA_PATH.format(chunk_index=chunk, file_index=file)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), data_path)
        write_h264(root / V3_VIDEO_PATH.format(video_key=EXPORT_CAMERA, chunk_index=chunk, file_index=file), frames, plan.fps)
        rows.append({"episode_index": number, "tasks": [task], "length": length,
                     "data/chunk_index": chunk, "data/file_index": file,
                     "dataset_from_index": index, "dataset_to_index": index + length,
                     f"videos/{EXPORT_CAMERA}/chunk_index": chunk, f"videos/{EXPORT_CAMERA}/file_index": file,
                     f"videos/{EXPORT_CAMERA}/from_timestamp": 0.0,
                     f"videos/{EXPORT_CAMERA}/to_timestamp": length / plan.fps,
                     "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        stats.add("action", actions)
        if state is not None:
            stats.add("observation.state", state)
        stats.add_pixels(EXPORT_CAMERA, frames)
        index += length
    info = _info(plan, len(rows), index, len(tasks))
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "stats.json").write_text(json.dumps(stats.summary(), indent=4))
    pq.write_table(pa.Table.from_pylist(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(tasks_table(pa, tasks), root / "meta" / "tasks.parquet")
    return info


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
        **({"observation.state": vector(plan.state_names)} if plan.state_keys else {}),
        **{name: {"dtype": dtype, "shape": [1], "names": None, "fps": fps} for name, dtype in
           (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
            ("task_index", "int64"))},
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


class _Stats:
    """Mean, std, min, max and count per feature over every frame, as LeRobot's stats.json
    holds them (a camera per channel, in [0, 1], shaped [3, 1, 1])."""

    def __init__(self):
        self.values: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        """values [N, D]: per-frame vectors."""
        values = np.asarray(values, np.float64)
        self._add(name, values.sum(0), (values**2).sum(0), values.min(0), values.max(0), len(values))

    def add_pixels(self, name: str, frames: np.ndarray) -> None:
        """uint8 frames [T, H, W, 3] as RGB in [0, 1], a frame at a time (no float copy of the episode)."""
        total, squares = np.zeros(3), np.zeros(3)
        for frame in frames:
            pixels = frame.reshape(-1, 3).astype(np.float32) / 255
            total += pixels.sum(0, dtype=np.float64)
            squares += (pixels**2).sum(0, dtype=np.float64)
        low, high = frames.min((0, 1, 2)) / 255, frames.max((0, 1, 2)) / 255
        self._add(name, total, squares, low, high, frames.shape[0] * frames.shape[1] * frames.shape[2])

    def _add(self, name, total, squares, low, high, count) -> None:
        self.values.setdefault(name, []).append(np.stack([total, squares, low, high, np.full(len(total), count)]))

    def summary(self) -> dict:
        out = {}
        for name, parts in self.values.items():
            parts = np.stack(parts)  # [episodes, 5, D]: sum, sum of squares, min, max, count
            count = parts[:, 4].sum(0)
            mean = parts[:, 0].sum(0) / count
            std = np.sqrt(np.maximum(parts[:, 1].sum(0) / count - mean**2, 0))
            shape = (3, 1, 1) if name == EXPORT_CAMERA else (-1,)
            out[name] = {key: value.reshape(shape).tolist() for key, value in
                         (("mean", mean), ("std", std), ("min", parts[:, 2].min(0)), ("max", parts[:, 3].max(0)))}
            out[name]["count"] = [int(count[0])]
        return out
