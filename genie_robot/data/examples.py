"""Small inputs in each source format, written with the real libraries (tensorflow-datasets,
rosbags, PyAV): the tests and benchmarks convert these, and they are handy for trying the
`genie-robot data rlds|rosbag|video` commands without fetching anything.

Frames are smooth gradients plus noise, so that they survive lossy codecs recognisably."""
from __future__ import annotations

from pathlib import Path

import numpy as np

RT1_IMAGE_SHAPE = (256, 320, 3)
# RT-1's action fields (fractal20220817_data 0.1.0): name -> (shape, dtype)
RT1_ACTIONS = {
    "world_vector": ((3,), np.float32),
    "rotation_delta": ((3,), np.float32),
    "gripper_closedness_action": ((1,), np.float32),
    "terminate_episode": ((3,), np.int32),
    "base_displacement_vector": ((2,), np.float32),
    "base_displacement_vertical_rotation": ((1,), np.float32),
}


def video(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3]: a gradient drifting over time plus noise, different per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        for c in range(3):
            wave = np.sin(x / width * 2 * np.pi + phase[c] + 0.3 * t) * np.cos(y / height * np.pi + 0.2 * t * c)
            out[t, :, :, c] = np.clip(128 + 100 * wave + rng.normal(0, 4, (height, width)), 0, 255)
    return out


def rt1_features(encoding: str = "png"):
    """The RT-1 step schema (actions exact, the main observation fields). The real dataset
    stores JPEG; PNG keeps tests exact."""
    import tensorflow_datasets as tfds

    F = tfds.features
    return F.FeaturesDict({
        "steps": F.Dataset({
            "action": F.FeaturesDict({k: F.Tensor(shape=s, dtype=d) for k, (s, d) in RT1_ACTIONS.items()}),
            "observation": F.FeaturesDict({
                "image": F.Image(shape=RT1_IMAGE_SHAPE, dtype=np.uint8, encoding_format=encoding),
                "natural_language_instruction": F.Text(),
                "natural_language_embedding": F.Tensor(shape=(512,), dtype=np.float32),
                "base_pose_tool_reached": F.Tensor(shape=(7,), dtype=np.float32),
                "gripper_closed": F.Tensor(shape=(1,), dtype=np.float32),
                "height_to_bottom": F.Tensor(shape=(1,), dtype=np.float32),
            }),
            "is_first": np.bool_,
            "is_last": np.bool_,
            "is_terminal": np.bool_,
            "reward": F.Scalar(dtype=np.float32),
        }),
    })


def rt1_episode(rng: np.random.Generator, steps: int, language: str) -> dict:
    """One RT-1 episode as TFDS example: {"steps": [step, ...]}."""
    frames = video(rng, steps, *RT1_IMAGE_SHAPE[:2])
    out = []
    for t in range(steps):
        action = {k: (rng.integers(0, 2, s) if d == np.int32 else rng.normal(size=s)).astype(d)
                  for k, (s, d) in RT1_ACTIONS.items()}
        out.append({
            "action": action,
            "observation": {
                "image": frames[t],
                "natural_language_instruction": language,
                "natural_language_embedding": rng.normal(size=512).astype(np.float32),
                "base_pose_tool_reached": rng.normal(size=7).astype(np.float32),
                "gripper_closed": np.zeros(1, np.float32),
                "height_to_bottom": np.ones(1, np.float32),
            },
            "is_first": t == 0,
            "is_last": t == steps - 1,
            "is_terminal": t == steps - 1,
            "reward": float(t == steps - 1),
        })
    return {"steps": out}


def write_rlds(data_dir: str | Path, name: str, features, episodes: list[dict], version: str = "0.1.0") -> Path:
    """Write `episodes` as the train split of a TFDS dataset; returns the version folder
    (what `tfds.builder_from_directory` and `genie-robot data rlds --dir` take)."""
    import tensorflow_datasets as tfds

    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=version, features=features, data_dir=str(data_dir), disable_shuffling=True,
        split_datasets={"train": [(f"episode_{i:06d}", e) for i, e in enumerate(episodes)]},
    )
    return Path(builder.data_dir)


def write_rt1(data_dir: str | Path, lengths=(6, 9, 5), seed: int = 0, encoding: str = "png") -> tuple[Path, list[dict]]:
    """An RT-1-schema dataset named fractal20220817_data; returns (folder, episodes written)."""
    rng = np.random.default_rng(seed)
    episodes = [rt1_episode(rng, n, f"pick object {i} from the drawer") for i, n in enumerate(lengths)]
    return write_rlds(data_dir, "fractal20220817_data", rt1_features(encoding), episodes), episodes


def action_message(typestore, values: np.ndarray, msgtype: str):
    """geometry_msgs/Twist from 6 numbers, or sensor_msgs/JointState with these positions."""
    ts = typestore.types
    if msgtype == "geometry_msgs/msg/Twist":
        vec = ts["geometry_msgs/msg/Vector3"]
        return ts[msgtype](linear=vec(*map(float, values[:3])), angular=vec(*map(float, values[3:])))
    header = ts["std_msgs/msg/Header"](stamp=ts["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    return ts[msgtype](header=header, name=[f"joint_{i}" for i in range(len(values))],
                       position=np.asarray(values, np.float64), velocity=np.zeros(0), effort=np.zeros(0))


def image_message(typestore, frame_HWC: np.ndarray, stamp_ns: int, encoding: str = "rgb8"):
    """sensor_msgs/Image (rgb8, bgr8, rgba8, mono8) or, with encoding "jpeg"/"png",
    sensor_msgs/CompressedImage, from an RGB frame."""
    import io

    from PIL import Image as PILImage

    ts = typestore.types
    header = ts["std_msgs/msg/Header"](
        stamp=ts["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="camera")
    if encoding in ("jpeg", "png"):
        buffer = io.BytesIO()
        PILImage.fromarray(frame_HWC).save(buffer, format=encoding.upper(), quality=95)
        data = np.frombuffer(buffer.getvalue(), np.uint8)
        return ts["sensor_msgs/msg/CompressedImage"](header=header, format=encoding, data=data)
    pixels = {"rgb8": frame_HWC, "bgr8": frame_HWC[..., ::-1],
              "rgba8": np.concatenate([frame_HWC, np.full_like(frame_HWC[..., :1], 255)], -1),
              "mono8": frame_HWC[..., :1]}[encoding]
    h, w, c = pixels.shape
    return ts["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                                       step=w * c, data=np.ascontiguousarray(pixels).reshape(-1))


def write_rosbag(
    path: str | Path,
    frames: np.ndarray,
    frame_times_ns: np.ndarray,
    actions: np.ndarray | None = None,
    action_times_ns: np.ndarray | None = None,
    storage: str = "sqlite3",
    encoding: str = "rgb8",
    image_topic: str = "/camera/image",
    action_topic: str = "/cmd_vel",
    action_type: str = "geometry_msgs/msg/Twist",
) -> Path:
    """A rosbag2 folder (sqlite3 or mcap) with an image topic and optional actions
    (Twist: [N, 6]; JointState: [N, joints] positions)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.LATEST)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    image_type = "sensor_msgs/msg/CompressedImage" if encoding in ("jpeg", "png") else "sensor_msgs/msg/Image"
    messages = [(int(t), "image", image_message(typestore, f, int(t), encoding)) for f, t in zip(frames, frame_times_ns)]
    if actions is not None:
        messages += [(int(t), "action", action_message(typestore, a, action_type)) for a, t in zip(actions, action_times_ns)]
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        connections = {"image": writer.add_connection(image_topic, image_type, typestore=typestore)}
        if actions is not None:
            connections["action"] = writer.add_connection(action_topic, action_type, typestore=typestore)
        for stamp, kind, msg in sorted(messages, key=lambda m: m[0]):
            writer.write(connections[kind], stamp, typestore.serialize_cdr(msg, msg.__msgtype__))
    return Path(path)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 30, codec: str = "libx264") -> Path:
    """Encode uint8 [T, H, W, 3] with PyAV (near-lossless: crf 10, yuv444p keeps colour)."""
    from genie_robot.media import encode_video

    return encode_video(path, frames, fps, codec, "yuv444p", {"crf": "10"})


def write_robomimic(path: str | Path, lengths=(6, 5, 7), size: int = 32, libero: bool = False, seed: int = 0) -> dict:
    """A demo file in the published robomimic layout (LIBERO's variant with `libero`), written
    with h5py as robomimic's and LIBERO's own scripts do: neither package installs here.
    Demos are numbered 0, 1, 10, ... so that numeric order differs from text order. Every
    upright image has a red top half and a blue bottom half; LIBERO's are stored upside down,
    as its datasets are. Returns {demo name: its actions}."""
    import json

    import h5py

    rng = np.random.default_rng(seed)
    upright = np.zeros((size, size, 3), np.uint8)
    upright[: size // 2, :, 0] = upright[size // 2:, :, 2] = 200
    camera, state_keys = (("agentview_rgb", ("ee_states", "gripper_states")) if libero
                          else ("agentview_image", ("robot0_eef_pos", "robot0_gripper_qpos")))
    names = [f"demo_{i}" for i in (0, 1, *range(10, 10 + len(lengths)))][: len(lengths)]
    written = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        env_kwargs = {"control_freq": 20, "controller_configs": {"type": "OSC_POSE"}}
        data.attrs["env_args"] = json.dumps({"env_name": "Libero_Kitchen" if libero else "Lift", "env_kwargs": env_kwargs})
        if libero:
            data.attrs["problem_info"] = json.dumps({"language_instruction": "open the top drawer of the cabinet"})
            data.attrs["bddl_file_name"] = "libero_10/KITCHEN_SCENE3_open_the_top_drawer.bddl"
        for name, steps in zip(names, lengths):
            demo = data.create_group(name)
            frames = np.repeat(upright[None], steps, axis=0) + rng.integers(0, 40, (steps, size, size, 3), dtype=np.uint8)
            demo.create_dataset(f"obs/{camera}", data=frames[:, ::-1] if libero else frames)
            demo.create_dataset("obs/eye_in_hand_rgb" if libero else "obs/robot0_eye_in_hand_image", data=frames)
            for key, dim in zip(state_keys, (3, 2)):
                demo.create_dataset(f"obs/{key}", data=rng.normal(size=(steps, dim)))
            written[name] = rng.uniform(-1, 1, (steps, 7)).astype(np.float32)
            demo.create_dataset("actions", data=written[name])
            demo.create_dataset("states", data=rng.normal(size=(steps, 10)))
            demo.attrs["num_samples"] = steps
        data.attrs["total"] = sum(lengths)
        f.create_dataset("mask/train", data=np.array([n.encode() for n in names[:-1]]))
        f.create_dataset("mask/valid", data=np.array([names[-1].encode()]))
    return written


def write_lerobot(root: str | Path, version: str = "v3.0", lengths=(6, 4, 5), size: int = 32, fps: int = 10,
                  seed: int = 0) -> dict:
    """A LeRobotDataset in the published on-disk layout of `version` ("v2.1" or "v3.0"),
    written with pyarrow and PyAV (LeRobot's own writer needs a CUDA torchvision build that does
    not load with this project's CPU torch). v3.0 packs every episode into one data file and
    one mp4 per camera, addressed by row range and timestamps, as LeRobot does; v2.1 has one
    of each per episode. Camera `observation.images.top` is H.264 video. Returns
    {"frames": [per episode uint8 [T, size, size, 3]], "actions": [[T, 2]], "tasks": [...]}."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from genie_robot.data.lerobot import tasks_table, write_h264

    rng = np.random.default_rng(seed)
    root = Path(root)
    frames = [video(rng, t, size, size) for t in lengths]
    actions = [rng.uniform(-1, 1, (t, 2)).astype(np.float32) for t in lengths]
    tasks = ["push the block left", "push the block right"]
    episode_tasks = [tasks[i % 2] for i in range(len(lengths))]
    camera = "observation.images.top"

    def table(i: int, start: int):
        t = lengths[i]
        return pa.table({"action": pa.array(list(actions[i]), pa.list_(pa.float32(), 2)),
                         "observation.state": pa.array(list(actions[i] * 0.5), pa.list_(pa.float32(), 2)),
                         "timestamp": pa.array(np.arange(t, dtype=np.float32) / fps),
                         "frame_index": pa.array(np.arange(t)), "episode_index": pa.array(np.full(t, i)),
                         "index": pa.array(np.arange(start, start + t)),
                         "task_index": pa.array(np.full(t, i % 2))})

    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    features = {camera: {"dtype": "video", "shape": [size, size, 3], "names": ["height", "width", "channels"]},
                "action": {"dtype": "float32", "shape": [2], "names": {"motors": ["vx", "vy"]}},
                "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]}}
    info = {"codebase_version": version, "robot_type": "koch", "fps": fps, "chunks_size": 1000,
            "total_episodes": len(lengths), "total_frames": int(sum(lengths)), "features": features}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    if version == "v2.1":
        info.update(data_path="data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                    video_path="videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4")
        for i, start in enumerate(starts):
            path = root / info["data_path"].format(episode_chunk=0, episode_index=i)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table(i, start), path)
            write_h264(root / info["video_path"].format(episode_chunk=0, video_key=camera, episode_index=i), frames[i], fps)
        (root / "meta" / "episodes.jsonl").write_text("".join(
            json.dumps({"episode_index": i, "tasks": [episode_tasks[i]], "length": t}) + "\n" for i, t in enumerate(lengths)))
        (root / "meta" / "tasks.jsonl").write_text("".join(
            json.dumps({"task_index": i, "task": task}) + "\n" for i, task in enumerate(tasks)))
    else:
        info.update(data_path="data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                    video_path="videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
        path = root / info["data_path"].format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables([table(i, start) for i, start in enumerate(starts)]), path)
        write_h264(root / info["video_path"].format(video_key=camera, chunk_index=0, file_index=0),
                   np.concatenate(frames), fps)
        rows = [{"episode_index": i, "tasks": [episode_tasks[i]], "length": t, "data/chunk_index": 0,
                 "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": start + t,
                 f"videos/{camera}/chunk_index": 0, f"videos/{camera}/file_index": 0,
                 f"videos/{camera}/from_timestamp": start / fps, f"videos/{camera}/to_timestamp": (start + t) / fps}
                for i, (t, start) in enumerate(zip(lengths, starts))]
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
        pq.write_table(tasks_table(pa, dict(zip(tasks, range(len(tasks))))), root / "meta" / "tasks.parquet")
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return {"frames": frames, "actions": actions, "tasks": episode_tasks}
