"""Acting in the world model: an interactive pygame window, headless playback, and
side-by-side rollout videos (`genie-robot play` / `genie-robot rollout`)."""
from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genie_robot.data.store import Episode, EpisodeStore, EpisodeWriter
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError
from genie_robot.eval.metrics import psnr
from genie_robot.extras import require
from genie_robot.media import labelled_columns
from genie_robot.models.inputs import as_video
from genie_robot.models.world_model import Session, Simulator
from genie_robot.sampling import SamplingConfig


def episode_clip(data: str | Path, episode: int, start: int, length: int | None, size: int) -> tuple[np.ndarray, str | None]:
    """Frames [start, start + length) of one stored episode at the model's size, uint8
    [T, S, S, 3], and what was done to reach that size (None when nothing)."""
    with EpisodeStore(data) as store:
        note = store.resolution_note(size)
        ep = store.episode(episode)
        stop = ep.num_frames if length is None else start + length
        if not 0 <= start < stop <= ep.num_frames:
            raise InputError(f"{data} episode {episode} has {ep.num_frames} frames; asked for frames {start}..{stop - 1}")
        return resize_video(ep.read_frames(start, stop), size), note


def parse_actions(text: str) -> list[int]:
    try:
        return [int(a) for a in text.replace(" ", "").split(",") if a]
    except ValueError:
        raise InputError(f"--actions must be comma-separated integers such as 0,3,3,5, got {text!r}") from None


def rollout_comparison(wm: Simulator, video: np.ndarray, prompt_frames: int = 1, seed: int = 0,
                       sampling=None) -> tuple[np.ndarray, dict, np.ndarray]:
    """Columns: ground truth | reconstruction | imagined with the LAM's inferred actions |
    imagined with random actions, from the same prompt. Returns (video, figures, the
    LAM-action rollout alone [T, S, S, 3])."""
    sampling = sampling or SamplingConfig()
    if len(video) <= prompt_frames:
        raise InputError(f"the clip has {len(video)} frames; need more than the {prompt_frames} prompt frames")
    inferred = wm.infer_actions(video)
    rng = np.random.default_rng(seed)
    random_actions = rng.integers(0, wm.num_actions, len(inferred))
    rows = np.stack([inferred, random_actions])[:, prompt_frames - 1:]
    imagination = wm.imagine(video[:prompt_frames], rows, inferred[: prompt_frames - 1], seed, sampling)
    imagined = {name: np.concatenate([imagination.prompt_frames, frames])
                for name, frames in zip(("inferred", "random"), imagination.frames)}
    truth = as_video(video, wm.image_size, "video")
    recon = wm.reconstruct(video)
    figures = {name: float(psnr(truth[prompt_frames:], frames[prompt_frames:]).mean()) for name, frames in imagined.items()}
    figures["reconstruction"] = float(psnr(truth, recon).mean())
    figures["inferred_actions"] = inferred.tolist()
    columns = [truth, recon, imagined["inferred"], imagined["random"]]
    return labelled_columns(columns, ["truth", "recon", "LAM acts", "random"]), figures, imagined["inferred"]


def imagined_episode(source: Episode, start: int, frames: np.ndarray, latents: np.ndarray, num_actions: int) -> dict:
    """`EpisodeWriter.append`'s arguments for an imagined rollout of `source`'s frames [start,
    start + len(frames)). Its actions are the source's own (e.g. the arm commands whose transitions
    the LAM read) when it recorded them, else the latent actions one-hot (`latent_0..`); its state
    is what the source recorded at the same frames, so an imagined frame comes with where things
    really were."""
    stop = start + len(frames)
    attrs = {k: source.attrs[k] for k in ("fps", "language", "robot") if k in source.attrs}
    if source.action_names is not None:
        actions, names = source.read_actions(start, stop - 1), source.action_names
    else:
        actions, names = np.eye(num_actions, dtype=np.float32)[latents], [f"latent_{i}" for i in range(num_actions)]
    state = {key: source.read_state(key)[start:stop] for key in source.state_keys}
    return dict(frames=frames, actions=actions, action_names=names, state=state, source="imagined", split="imagined", **attrs)


def save_imagined(out: str | Path, frames: np.ndarray, latents: np.ndarray, num_actions: int, data: str | Path,
                  episode: int, start: int, origin: str) -> int | None:
    """Append an imagined rollout to the store at `out` as an episode (`imagined_episode`), so
    that it can be exported (`data export-lerobot`) or trained on. Returns the new episode's
    index, or None when the store already holds a rollout of this origin (the same run, episode,
    start and seed)."""
    with EpisodeStore(data) as store:
        episode_args = imagined_episode(store.episode(episode), start, frames, latents, num_actions)
    with EpisodeWriter(out) as writer:
        if origin in writer.origins():
            return None
        return writer.append(**episode_args, origin=origin)


def imagine_stores(wm: Simulator, run_name: str, stores, out: str | Path, frames: int = 16, sampling=None, seed: int = 0,
                   rows: int = 16, progress: bool = True) -> int:
    """Imagine every whole `frames`-long clip (starting at multiples of `frames`) of every episode of
    `stores` from its first frame with the latent actions the LAM reads from the clip, and append
    each to the store at `out` (`imagined_episode`): the world model's imagination beside what
    happened, for training or export (README, "Where the imagined hand goes"). `rows` clips are
    imagined together; clip number i of the whole list samples with seed + i, so an interrupted
    call, which skips the clips already in `out` (by origin: run, store, episode, start, seed),
    resumes to the same store. Returns the number appended."""
    if not 2 <= frames <= wm.max_memory:
        raise InputError(f"imagined clips need 2..{wm.max_memory} frames (the model's window), got {frames}")
    if any(Path(data).resolve() == Path(out).resolve() for data in stores):
        raise InputError(f"--out {out} is also one of the stores being imagined; write the imagined clips to another file")
    with ExitStack() as stack:
        sources = {str(data): stack.enter_context(EpisodeStore(data)) for data in stores}
        writer = stack.enter_context(EpisodeWriter(out))
        done = writer.origins()
        clips = [(data, e, start) for data, store in sources.items() for e, episode in enumerate(store)
                 for start in range(0, episode.num_frames - frames + 1, frames)]
        todo = [(index, data, e, start, origin) for index, (data, e, start) in enumerate(clips)
                if (origin := f"{run_name}:{data}:{e}:{start}:seed{seed}") not in done]
        bar = stack.enter_context(tqdm(total=len(todo), desc="imagine clips", unit="clip", disable=not progress))
        for first in range(0, len(todo), rows):
            batch = todo[first:first + rows]
            videos = [resize_video(sources[data].episode(e).read_frames(start, start + frames), wm.image_size)
                      for _, data, e, start, _ in batch]
            latents_BN = np.stack([wm.infer_actions(video) for video in videos])
            session = wm.start_rows([video[:1] for video in videos], seed=[seed + clip[0] for clip in batch],
                                    sampling=sampling or SamplingConfig())
            imagined_BTHWC = np.concatenate([session.row_prompt_frames, session.rollout(latents_BN)], axis=1)
            for (_, data, e, start, origin), imagined_THWC, latents in zip(batch, imagined_BTHWC, latents_BN):
                writer.append(**imagined_episode(sources[data].episode(e), start, imagined_THWC, latents, wm.num_actions),
                              origin=origin)
            bar.update(len(batch))
    return len(todo)


def play_headless(session: Session, actions: list[int]) -> np.ndarray:
    """The prompt as the tokenizer keeps it, then one generated frame per action."""
    return np.concatenate([session.prompt_frames, session.rollout(actions)])


ACTION_KEYS = "0123456789abcdef"  # key of latent action i: up to 16 (`train lam --num-actions`); more only with --actions
KEYS_HELP = "keys: 0-9, a-f = latent action 0-15, space = repeat last, r = restart, q/Esc = quit"


def play_window(start_session, num_actions: int, scale: int = 6, max_frames: int | None = None,
                events=None) -> list[np.ndarray]:
    """Interactive loop. `start_session()` makes a fresh session (also on 'r'). Returns the
    frames shown. `events` (a callable giving pygame events) replaces the keyboard in tests."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")):
        raise InputError("no display for the play window; use --headless --actions 0,1,2 --out FILE.gif")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame = require("pygame")

    pygame.init()
    try:
        session = start_session()
        frame = session.prompt_frames[-1]
        size = (frame.shape[1] * scale, frame.shape[0] * scale + 40)
        screen = pygame.display.set_mode(size)
        pygame.display.set_caption("genie-robot play")
        font = pygame.font.Font(None, 20)
        shown, last_action, status = [frame], None, KEYS_HELP
        events = events or pygame.event.get
        while max_frames is None or len(shown) < max_frames:
            action = None
            for event in events():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in (pygame.K_q, pygame.K_ESCAPE)):
                    return shown
                if event.type != pygame.KEYDOWN:
                    continue
                if event.key == pygame.K_r:
                    session = start_session()
                    frame, last_action, status = session.prompt_frames[-1], None, "restarted"
                    shown.append(frame)
                elif event.key == pygame.K_SPACE and last_action is not None:
                    action = last_action
                elif 0 <= event.key < 128 and chr(event.key) in ACTION_KEYS:  # pygame's key codes of ASCII keys are their codes
                    index = ACTION_KEYS.index(chr(event.key))
                    if index < num_actions:
                        action = index
                    else:
                        status = f"action {index} out of range: this model has actions 0..{num_actions - 1}"
            if action is not None:
                began = time.perf_counter()
                frame = session.step(action)
                shown.append(frame)
                last_action = action
                status = f"action {action}   {1 / (time.perf_counter() - began):.1f} frames/s   step {session.steps_taken}"
            surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.repeat(scale, 0).repeat(scale, 1).swapaxes(0, 1)))
            screen.fill((255, 255, 255))
            screen.blit(surface, (0, 0))
            screen.blit(font.render(status, True, (0, 0, 0)), (4, size[1] - 34))
            pygame.display.flip()
            pygame.time.wait(10)
        return shown
    finally:
        pygame.quit()
