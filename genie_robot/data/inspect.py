"""Summaries and pictures of an episode store (`genie-robot data info|preview`)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from genie_robot.data.store import EpisodeStore
from genie_robot.media import upscale, write_image, write_video

# 3 mm RMS shape change (beyond rigid motion) of the 7.5 cm soft cube shows at 64x64.
VISIBLE_DEFORMATION = 0.003


def store_info(store: EpisodeStore) -> dict:
    episodes = list(store)
    contact = deformed = with_contact_state = 0
    for ep in episodes:
        if "contact" in ep.state_keys:
            with_contact_state += 1
            contact += bool(ep.read_state("contact").any())
            if "soft_deformation" in ep.state_keys:
                deformed += bool(ep.read_state("soft_deformation").max() > VISIBLE_DEFORMATION)
    lengths = [e.num_frames for e in episodes]
    return {
        "path": str(store.path),
        "episodes": len(episodes),
        "frames": int(sum(lengths)),
        "episode_length": {"min": min(lengths, default=0), "max": max(lengths, default=0)},
        "resolutions": sorted(f"{h}x{w}" for h, w, _ in store.frame_shapes()),
        "action_names": sorted({", ".join(e.action_names) if e.action_names else "(none)" for e in episodes}),
        "sources": dict(Counter(e.attrs.get("source", "?") for e in episodes)),
        "splits": dict(Counter(e.attrs.get("split", "?") for e in episodes)),
        "contact_share": contact / with_contact_state if with_contact_state else None,
        "deformation_share": deformed / with_contact_state if with_contact_state else None,
        "size_mb": store.path.stat().st_size / 1e6,
    }


def format_info(info: dict) -> str:
    share = lambda v: "n/a (no contact state)" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    lines = [
        f"store        {info['path']}",
        f"episodes     {info['episodes']}",
        f"frames       {info['frames']} (episode length {info['episode_length']['min']}..{info['episode_length']['max']})",
        f"resolution   {', '.join(info['resolutions'])}",
        f"actions      {' | '.join(info['action_names'])}",
        f"sources      {', '.join(f'{k}: {v}' for k, v in info['sources'].items())}",
        f"splits       {', '.join(f'{k}: {v}' for k, v in info['splits'].items())}",
        f"contact      {share(info['contact_share'])} of episodes touch an object",
        f"deformation  {share(info['deformation_share'])} of episodes visibly deform the soft object",
        f"size         {info['size_mb']:.1f} MB ({1000 * info['size_mb'] / max(info['frames'], 1):.2f} MB per 1000 frames)",
    ]
    return "\n".join(lines)


def contact_sheet(store: EpisodeStore, rows: int = 6, cols: int = 8, pad: int = 2) -> np.ndarray:
    """Rows of episodes (evenly spread over the store), columns of evenly spaced frames."""
    chosen = np.unique(np.linspace(0, len(store) - 1, min(rows, len(store))).round().astype(int))
    tiles = []
    for index in chosen:
        episode = store[int(index)]
        picks = np.unique(np.linspace(0, episode.num_frames - 1, cols).round().astype(int))
        frames = episode.frames[picks]
        row = [np.pad(f, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for f in frames]
        row += [np.full_like(row[0], 255)] * (cols - len(row))
        tiles.append(np.concatenate(row, axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(tiles, axis=0)


def write_preview(store: EpisodeStore, out: str | Path, episode: int = 0) -> tuple[Path, Path]:
    """Write the contact sheet to `out` (PNG) and one episode as a GIF beside it."""
    out = Path(out)
    frame_height = store[episode].frame_shape[0]
    write_image(out, upscale(contact_sheet(store), frame_height))
    gif = write_video(out.with_suffix(".gif"), upscale(store[episode].frames, frame_height))
    return out, gif
