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
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.convert import Converted, check_size
from genie_robot.data.store import EpisodeStore
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError, StoreError
from genie_robot.extras import require
from genie_robot.io import atomic_path

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
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
        self.fps = float(info["fps"])
        self.robot = info.get("robot_type") or "lerobot"
        self.episodes_meta, self.tasks = self._v3_meta() if self.version == "v3.0" else self._v2_meta()
        if not self.episodes_meta:
            raise StoreError(f"{self.root} lists no episodes; nothing to convert")

    # ------------------------------------------------------------------ metadata
    def _v2_meta(self) -> tuple[list[dict], dict[int, str]]:
        tasks = {t["task_index"]: t["task"] for t in _read_jsonl(self.root / "meta" / "tasks.jsonl")}
        episodes = sorted(_read_jsonl(self.root / "meta" / "episodes.jsonl"), key=lambda e: e["episode_index"])
        return episodes, tasks

    def _v3_meta(self) -> tuple[list[dict], dict[int, str]]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise StoreError(f"{self.root}/meta/episodes holds no chunk-*/file-*.parquet; a v3.0 dataset lists its "
                             "episodes there")
        episodes = sorted((row for f in files for row in self.pq.read_table(f).to_pylist()),
                          key=lambda e: e["episode_index"])
        table = self.pq.read_table(self.root / "meta" / "tasks.parquet")
        # pandas writes the task strings as the frame's index column.
        pandas_meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
        index_columns = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)]
        text = next((c for c in (*index_columns, "task", "__index_level_0__") if c in table.column_names), None)
        if text is None:
            raise StoreError(f"{self.root}/meta/tasks.parquet has no task text column (columns {table.column_names})")
        return episodes, dict(zip(table.column("task_index").to_pylist(), table.column(text).to_pylist()))

    def _data_path(self, meta: dict) -> Path:
        if self.version == "v3.0":
            return self.root / self.info["data_path"].format(chunk_index=meta["data/chunk_index"],
                                                             file_index=meta["data/file_index"])
        index = meta["episode_index"]
        return self.root / self.info["data_path"].format(episode_chunk=index // self.info.get("chunks_size", CHUNK_SIZE),
                                                         episode_index=index)

    def _video_location(self, meta: dict) -> tuple[Path, float, float | None]:
        """(mp4 file, first timestamp, end timestamp or None for the whole file)."""
        if self.version == "v3.0":
            key = f"videos/{self.camera}"
            path = self.info["video_path"].format(video_key=self.camera, chunk_index=meta[f"{key}/chunk_index"],
                                                  file_index=meta[f"{key}/file_index"])
            return self.root / path, float(meta[f"{key}/from_timestamp"]), float(meta[f"{key}/to_timestamp"])
        index = meta["episode_index"]
        path = self.info["video_path"].format(episode_chunk=index // self.info.get("chunks_size", CHUNK_SIZE),
                                              video_key=self.camera, episode_index=index)
        return self.root / path, 0.0, None

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
        path = self._data_path(meta)
        if not path.is_file():
            raise StoreError(f"{path} is missing: episode {meta['episode_index']}'s frames are listed but not there")
        table = self.pq.read_table(path)
        if self.version == "v3.0":
            table = table.slice(meta["dataset_from_index"] - table.column("index")[0].as_py(),
                                meta["dataset_to_index"] - meta["dataset_from_index"])
        rows = {name: table.column(name).to_pylist() for name in table.column_names
                if name in (self.action_key, self.state_key, self.camera, "episode_index", "frame_index")}
        if set(rows.get("episode_index", [])) != {meta["episode_index"]}:
            raise StoreError(f"{path}: rows for episode {meta['episode_index']} hold episode_index "
                             f"{sorted(set(rows.get('episode_index', [])))}; the episode table and the data disagree")
        return rows

    def _episode(self, meta: dict) -> Converted:
        rows = self._rows(meta)
        length = len(rows["episode_index"])
        frames = self._video_frames(meta, length) if self.is_video else self._image_frames(rows[self.camera])
        actions = np.asarray(rows[self.action_key], np.float32).reshape(length, -1)[:-1]
        state = ({"observation.state": np.asarray(rows[self.state_key], np.float32).reshape(length, -1)}
                 if self.state_key else None)
        task_indices = meta.get("tasks") or []
        language = task_indices[0] if task_indices and isinstance(task_indices[0], str) else None
        attrs = {"source": f"lerobot:{self.root.name}", "robot": self.robot, "fps": self.fps, "split": "train",
                 "origin": self._origin(meta), "language": language}
        return Converted(resize_video(frames, self.size), actions, self.action_names, attrs, state)

    def _video_frames(self, meta: dict, length: int) -> np.ndarray:
        av = require("av")
        path, start, end = self._video_location(meta)
        if not path.is_file():
            raise StoreError(f"{path} is missing: episode {meta['episode_index']}'s {self.camera} video")
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
        if len(frames) < length:
            raise StoreError(f"{path}: episode {meta['episode_index']} has {length} frames in its parquet but only "
                             f"{len(frames)} in the video; the video is truncated (re-download or re-encode it)")
        return np.stack(frames)

    def _image_frames(self, cells: list) -> np.ndarray:
        from PIL import Image

        return np.stack([np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB")) for cell in cells])


# ---------------------------------------------------------------------- export
def export_lerobot(data: str | Path, out: str | Path, fps: float | None = None, progress: bool = True) -> dict:
    """Write the store at `data` as a LeRobot v3.0 dataset in the new folder `out`; returns its
    info.json. Written next to `out` and renamed into place at the end: an interrupted export
    leaves nothing half-written under `out`."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} already exists; export into a new folder")
    with EpisodeStore(data) as store:
        if len(store) == 0:
            raise StoreError(f"{data} holds no episodes; nothing to export")
        episodes = list(store)
        names = {tuple(e.action_names) if e.action_names else None for e in episodes}
        if len(names) != 1 or None in names:
            raise StoreError(f"{data}: every episode needs actions with one layout to export (found "
                             f"{sorted(map(str, names))}); LeRobot datasets hold one action vector per frame")
        action_names = list(next(iter(names)))
        shapes = {e.frame_shape for e in episodes}
        if len(shapes) != 1:
            raise StoreError(f"{data} mixes frame sizes {sorted(shapes)}; one LeRobot camera has one size")
        if fps is None:
            rates = {float(e.attrs.get("fps", 0)) for e in episodes}
            if len(rates) != 1 or 0 in rates:
                raise InputError(f"{data}: episodes record frame rates {sorted(rates)} (0: none recorded); pass --fps")
            fps = rates.pop()
        # Per-frame vectors only (soft-body vertices [T, V, 3] are not robot state), in every episode.
        state_keys = [k for k in sorted(episodes[0].state_keys) if episodes[0].read_state(k).ndim == 2
                      and all(k in e.state_keys for e in episodes)]
        state_dims = [episodes[0].read_state(k).shape[1] for k in state_keys]
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tasks: dict[str, int] = {}
        rows, sums = [], _Stats()
        index = 0
        for number, episode in enumerate(tqdm(episodes, desc="export episodes", unit="ep", disable=not progress)):
            frames = episode.read_frames()
            length = len(frames)
            actions = np.asarray(episode.read_actions(), np.float32)
            actions = np.concatenate([actions, actions[-1:]])  # the last frame has no action of its own
            state = np.concatenate([episode.read_state(k) for k in state_keys], 1).astype(np.float32) if state_keys else None
            task = getattr(episode, "language", None) or getattr(episode, "source", None) or "episode"
            task_index = tasks.setdefault(task, len(tasks))
            chunk, file = divmod(number, CHUNK_SIZE)
            columns = {"action": pa.array(list(actions), pa.list_(pa.float32(), actions.shape[1]))}
            if state is not None:
                columns["observation.state"] = pa.array(list(state), pa.list_(pa.float32(), state.shape[1]))
            columns.update(timestamp=pa.array(np.arange(length, dtype=np.float32) / np.float32(fps)),
                           frame_index=pa.array(np.arange(length, dtype=np.int64)),
                           episode_index=pa.array(np.full(length, number, np.int64)),
                           index=pa.array(np.arange(index, index + length, dtype=np.int64)),
                           task_index=pa.array(np.full(length, task_index, np.int64)))
            data_path = tmp / V3_DATA_PATH.format(chunk_index=chunk, file_index=file)
            data_path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(columns), data_path)
            video_path = tmp / V3_VIDEO_PATH.format(video_key=EXPORT_CAMERA, chunk_index=chunk, file_index=file)
            write_h264(video_path, frames, fps)
            rows.append({"episode_index": number, "tasks": [task], "length": length,
                         "data/chunk_index": chunk, "data/file_index": file,
                         "dataset_from_index": index, "dataset_to_index": index + length,
                         f"videos/{EXPORT_CAMERA}/chunk_index": chunk, f"videos/{EXPORT_CAMERA}/file_index": file,
                         f"videos/{EXPORT_CAMERA}/from_timestamp": 0.0,
                         f"videos/{EXPORT_CAMERA}/to_timestamp": length / fps,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            sums.add("action", actions)
            if state is not None:
                sums.add("observation.state", state)
            sums.add(EXPORT_CAMERA, frames.reshape(-1, 3).astype(np.float64) / 255)
            index += length
        height, width = episodes[0].frame_shape[:2]
        state_names = [f"{k}_{i}" for k, dim in zip(state_keys, state_dims) for i in range(dim)]
        robot = getattr(episodes[0], "robot", None) or "genie_robot"
    features = {
        EXPORT_CAMERA: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                        "info": {"video.height": height, "video.width": width, "video.codec": "h264",
                                 "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                 "video.channels": 3, "has_audio": False}},
        "action": {"dtype": "float32", "shape": [len(action_names)], "names": action_names},
        **({"observation.state": {"dtype": "float32", "shape": [len(state_names)], "names": state_names}}
           if state_keys else {}),
        **{name: {"dtype": dtype, "shape": [1], "names": None} for name, dtype in
           (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
            ("task_index", "int64"))},
    }
    info = {"codebase_version": "v3.0", "robot_type": robot, "total_episodes": len(rows), "total_frames": index,
            "total_tasks": len(tasks), "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{len(rows)}"},
            "data_path": V3_DATA_PATH, "video_path": V3_VIDEO_PATH, "features": features}
    (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (tmp / "meta" / "stats.json").write_text(json.dumps(sums.summary(), indent=4))
    pq.write_table(pa.Table.from_pylist(rows), tmp / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(tasks_table(pa, tasks), tmp / "meta" / "tasks.parquet")
    tmp.rename(out)
    return info


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
    """H.264 in yuv420p, a keyframe every 2 frames as LeRobot encodes for random access."""
    av = require("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "15", "g": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


class _Stats:
    """Mean, std, min, max and count per feature over every frame, as LeRobot's stats.json
    holds them (a camera per channel, in [0, 1], shaped [3, 1, 1])."""

    def __init__(self):
        self.values: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        """values [N, D]: per-frame vectors; for a camera, every pixel's RGB in [0, 1]."""
        values = np.asarray(values, np.float64)
        count = np.full(values.shape[1], len(values), np.float64)
        self.values.setdefault(name, []).append(
            np.stack([values.sum(0), (values**2).sum(0), values.min(0), values.max(0), count]))

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
