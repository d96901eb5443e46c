"""Platformer gameplay generated from real games -> episode store.

Atari through ale-py (ROMs ship with it; Pitfall!, Montezuma's Revenge, H.E.R.O., ...) and
Procgen through procgen2 (CoinRun, Ninja, Climber, Jumper; see DEPENDENCIES / Makefile for its
--no-deps install). Any other ALE ROM id or Procgen game name is accepted too.

Policies: "random" draws a uniform action every step; "sticky" (default) repeats the previous
action with probability 0.75, giving runs of ~4 steps: longer coherent motions, which a
latent action model learns from more easily than single-step jitter.

Actions are stored one-hot over the game's full action set, named by the action
(NOOP, FIRE, UP, RIGHT, ... for Atari: all 18 ALE actions, so every Atari store shares one
layout; LEFT+DOWN, ..., NOOP for Procgen's 15). One-hot rather than an index because the
clip sampler averages actions under frame skip: averaged one-hots are action frequencies,
averaged indices mean nothing; argmax recovers the index. The policy only draws from the
game's minimal action set. ALE's own sticky actions are off (repeat_action_probability 0) so
the stored action is the one the game executed.

Atari runs at 60 Hz; each step repeats the action for --frame-skip frames (default 4: 15 fps)
and records the last. Procgen steps are already coarse (frame skip 1). An episode ends after
--steps frames or when the game ends (game over in Atari; death or level end in Procgen).
Episode k is a pure function of (game, policy, seed, k), so an interrupted run resumes.
Frames are centre-cropped to square (Atari's 210x160 loses the top and bottom 25 rows) and
area-resized to --size."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from genie_robot.data.convert import Converted, check_policy_run, check_size
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError
from genie_robot.extras import require

ALE_PLATFORMERS = ("pitfall", "pitfall2", "montezuma_revenge", "hero", "kangaroo", "keystone_kapers",
                   "private_eye", "mario_bros", "donkey_kong", "king_kong", "frostbite")
PROCGEN_PLATFORMERS = ("coinrun", "ninja", "climber", "jumper")
POLICIES = ("sticky", "random")
STICKY_REPEAT = 0.75
ALE_FPS = 60
PROCGEN_FPS = 15
PROCGEN_SIZE = 64  # procgen's observation; larger --size renders its 512x512 view instead


def _procgen_games() -> list[str]:
    try:
        from procgen.env import ENV_NAMES
    except ImportError:
        return []
    return list(ENV_NAMES)


def _ale_games() -> list[str]:
    return list(require("ale_py.roms").get_all_rom_ids())


class PlatformerReader:
    def __init__(self, game: str, episodes: int, steps: int, size: int = 64, policy: str = "sticky",
                 seed: int = 0, frame_skip: int | None = None, split: str = "train"):
        check_policy_run(policy, POLICIES, episodes, steps)
        if game in _procgen_games():
            self.backend = "procgen"
        elif game in PROCGEN_PLATFORMERS:
            raise InputError(f"{game} needs procgen2: pip install --no-deps procgen2 gym3==0.3.3 gym==0.26.2 "
                             "cffi imageio gym_notices cloudpickle (make setup does this)")
        elif game in _ale_games():
            self.backend = "ale"
        else:
            raise InputError(f"unknown game {game!r}; platformers: {', '.join(ALE_PLATFORMERS + PROCGEN_PLATFORMERS)} "
                             "(any ALE ROM id or Procgen game also works)")
        self.game, self.episodes_wanted, self.steps = game, episodes, steps
        self.size, self.policy, self.seed, self.split = check_size(size), policy, seed, split
        self.frame_skip = frame_skip or (4 if self.backend == "ale" else 1)
        if self.frame_skip < 1:
            raise InputError(f"--frame-skip must be >= 1, got {frame_skip}")
        self.fps = (ALE_FPS if self.backend == "ale" else PROCGEN_FPS) / self.frame_skip
        self._ale = None

    def _origin(self, index: int) -> str:
        return f"{self.backend}:{self.game}/{self.policy}/skip{self.frame_skip}/seed{self.seed}/{index}"

    def count(self, done: set[str]) -> int:
        return sum(self._origin(i) not in done for i in range(self.episodes_wanted))

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        play = self._play_ale if self.backend == "ale" else self._play_procgen
        for index in range(self.episodes_wanted):
            origin = self._origin(index)
            if origin in done:
                continue
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
            frames, actions, names = play(rng)
            if len(frames) < 2:
                continue  # the game ended at once; nothing to learn from
            yield Converted(
                resize_video(np.stack(frames), self.size), np.eye(len(names), dtype=np.float32)[actions], names,
                attrs={"source": f"{self.backend}:{self.game}", "fps": self.fps, "language": "", "split": self.split,
                       "origin": origin})

    def _choose(self, rng: np.random.Generator, choices: np.ndarray, previous: int | None) -> int:
        if self.policy == "sticky" and previous is not None and rng.random() < STICKY_REPEAT:
            return previous
        return int(rng.choice(choices))

    def _play_ale(self, rng: np.random.Generator) -> tuple[list, list, list[str]]:
        from ale_py import Action, ALEInterface, LoggerMode, roms

        if self._ale is None:
            ALEInterface.setLoggerMode(LoggerMode.Error)
            self._ale = ALEInterface()
            self._ale.setFloat("repeat_action_probability", 0.0)
            self._ale.loadROM(roms.get_rom_path(self.game))
        ale = self._ale
        ale.reset_game()  # deterministic: the episode's randomness is all in the policy's rng
        names = [a.name for a in sorted(Action.__members__.values(), key=lambda a: a.value)]
        minimal = np.array([a.value for a in ale.getMinimalActionSet()])
        frames, actions, action = [ale.getScreenRGB()], [], None
        while len(frames) < self.steps and not ale.game_over():
            action = self._choose(rng, minimal, action)
            for _ in range(self.frame_skip):
                ale.act(Action(action))
            frames.append(ale.getScreenRGB())
            actions.append(action)
        return frames, actions, names

    def _play_procgen(self, rng: np.random.Generator) -> tuple[list, list, list[str]]:
        from procgen import ProcgenGym3Env

        hires = self.size > PROCGEN_SIZE
        level = int(rng.integers(2**31 - 1))
        env = ProcgenGym3Env(num=1, env_name=self.game, start_level=level, num_levels=1, rand_seed=level,
                             render_mode="rgb_array" if hires else None)
        names = ["+".join(combo) or "NOOP" for combo in env.combos]
        observe = (lambda: env.get_info()[0]["rgb"]) if hires else (lambda: env.observe()[1]["rgb"][0])
        frames, actions, action = [observe().copy()], [], None
        while len(frames) < self.steps:
            action = self._choose(rng, np.arange(len(names)), action)
            if not self._procgen_act(env, action):
                break  # the level ended: procgen already shows the next level's first frame
            frames.append(observe().copy())
            actions.append(action)
        env.close()
        return frames, actions, names

    def _procgen_act(self, env, action: int) -> bool:
        """Repeat `action` frame_skip times; False as soon as the level ends."""
        for _ in range(self.frame_skip):
            env.act(np.array([action]))
            if env.observe()[2][0]:
                return False
        return True
