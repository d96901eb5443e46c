"""Gymnasium environments, registered on import of `genie_robot.envs`:

  gymnasium.make("genie_robot/WorldModel-v0", run=RUN_DIR, data=STORE)   the learned simulator
  gymnasium.make("genie_robot/MuJoCoArm-v0", data=STORE, run=RUN_DIR)    its physics twin

Both have the same spaces: observation the RGB frame (uint8 S x S x 3 at the run's
resolution), action a latent action `Discrete(num_actions)` or, with `action_space="arm"`, the
arm's command `Box(-1, 1, (4,))` (end-effector velocity x, y, z and gripper), turned into a
latent action by the run's adapter (world model) or applied as is (MuJoCo; latent actions go
through the adapter's command for each). A run without an adapter serves the spaces that need
none (the world model's latent actions, MuJoCo's arm commands); the others refuse it, naming the
command that trains one. `reset` draws a stored frame from the store with the
environment's seeded generator: the world model starts from that frame, MuJoCo from the
recorded state at it. With `goal` (an image), the reward is the negative mean squared error
of the frame to it, in [-1, 0]; otherwise 0. Nothing terminates; an episode is truncated
when the world model's memory is full (`memory - 1` steps after the prompt frame), past which
it forgets its start, and the twin truncates at the same step so both stay comparable.
`render_mode="rgb_array"` returns the current frame. `world_model="change"` serves the run's
change-token world model instead of the video one (docs/architecture.md).

`gymnasium.make_vec("genie_robot/WorldModel-v0", num_envs=N, vectorization_mode="vector_entry_point",
run=..., data=...)` runs N of them as rows of one batched session (one transformer pass per
MaskGIT step for all N): every row truncates at the same step, and the next `step` resets all
of them (Gymnasium's next-step autoreset)."""
from __future__ import annotations

import abc

import numpy as np

from genie_robot.data.store import EpisodeStore
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError
from genie_robot.extras import require
from genie_robot.models.inputs import as_video
from genie_robot.models.run import Run, resolve_device
from genie_robot.sampling import SamplingConfig

gym = require("gymnasium")
spaces = gym.spaces
ACTION_SPACES = ("latent", "arm")


class _StoredStarts:
    """Start frames drawn from a store: (frame at the model's size, recorded state at it)."""

    def __init__(self, data, size: int):
        self.store, self.size = EpisodeStore(data), size
        self.store.resolution_note(size)  # refuses frames smaller than the model
        if len(self.store) == 0:
            raise InputError(f"{data} holds no episodes to start from")

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, dict, dict]:
        index = int(rng.integers(len(self.store)))
        episode = self.store[index]
        step = int(rng.integers(episode.num_frames))
        frame = resize_video(episode.read_frames(step, step + 1), self.size)[0]
        state = {key: episode.read_state(key)[step] for key in episode.state_keys}
        return frame, state, {"episode": index, "step": step}


class _GenieEnv(gym.Env, abc.ABC):
    """What both environments share: spaces, start frames, reward, truncation, rendering."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}  # the arm world's frame rate (sim.world.FRAME_DT)

    # The action space whose actions the run's adapter translates, and what it translates them into.
    translated: tuple[str, str]

    def __init__(self, run, data, action_space: str, goal, render_mode, device: str, world_model: str):
        if action_space not in ACTION_SPACES:
            raise InputError(f"action_space must be one of {ACTION_SPACES}, got {action_space!r}")
        if render_mode not in (None, "rgb_array"):
            raise InputError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.run = Run.load(run, resolve_device(device))
        self.wm = self.run.world_model(world_model)
        space, into = self.translated
        self.adapter = self.run.require("adapter", f"{type(self).__name__}'s {space!r} action space (the adapter turns its "
                                                   f"actions into {into})") if action_space == space else None
        self.kind, self.render_mode = action_space, render_mode
        size = self.wm.image_size
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        if action_space == "latent":
            self.action_space = spaces.Discrete(self.wm.num_actions)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (self.command_dim(),), np.float32)
        self.starts = _StoredStarts(data, size)
        self.goal = None if goal is None else as_video(goal, size, "goal image")[-1].astype(np.float32) / 255
        self.max_steps = self.wm.max_memory - 1
        self.frame, self.steps = None, 0

    @abc.abstractmethod
    def command_dim(self) -> int:
        """The size of an arm command."""

    def goal_reward(self, frame: np.ndarray) -> float:
        return 0.0 if self.goal is None else -float(np.mean((frame.astype(np.float32) / 255 - self.goal) ** 2))

    def _check(self, action):
        if not self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)):
            raise InputError(f"action {action!r} is outside the action space {self.action_space}")

    def _result(self, frame: np.ndarray):
        self.frame, self.steps = frame, self.steps + 1
        return frame, self.goal_reward(frame), False, self.steps >= self.max_steps, {"step": self.steps}

    def render(self):
        return None if self.render_mode is None else self.frame

    def close(self):
        self.starts.store.close()


class WorldModelEnv(_GenieEnv):
    """The learned simulator as a Gymnasium environment (see the module docstring)."""

    translated = ("arm", "latent actions")

    def __init__(self, run, data, action_space: str = "latent", goal=None, render_mode=None, device: str = "cpu",
                 maskgit_steps: int = 8, temperature: float = SamplingConfig.temperature, world_model: str = "video"):
        super().__init__(run, data, action_space, goal, render_mode, device, world_model)
        self.sampling = SamplingConfig(steps=maskgit_steps, temperature=temperature)
        self.session = None

    def command_dim(self) -> int:
        return self.adapter.config.command_dim

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        frame, _, info = self.starts.draw(self.np_random)
        self.session = self.wm.start(frame, seed=int(self.np_random.integers(2**31)), sampling=self.sampling)
        self.frame, self.steps = self.session.prompt_frames[-1], 0
        return self.frame, info

    def step(self, action):
        self._check(action)
        latent = int(action) if self.kind == "latent" else int(self.adapter.to_latent(np.asarray(action, np.float32))[0])
        return self._result(self.session.step(latent))


class WorldModelVectorEnv(gym.vector.VectorEnv):
    """N world-model environments as the rows of one batched session (see the module docstring)."""

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, run, data, action_space: str = "latent", goal=None, device: str = "cpu",
                 maskgit_steps: int = 8, temperature: float = SamplingConfig.temperature, world_model: str = "video"):
        if num_envs < 1:
            raise InputError(f"num_envs must be >= 1, got {num_envs}")
        self.env = WorldModelEnv(run, data, action_space, goal, None, device, maskgit_steps, temperature, world_model)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self.env.observation_space, self.env.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.session, self.steps, self._reset_next = None, 0, False
        self._rng = np.random.default_rng()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        draws = [self.env.starts.draw(self._rng) for _ in range(self.num_envs)]
        self.session = self.env.wm.start_rows([frame for frame, _, _ in draws], seed=int(self._rng.integers(2**31)),
                                              sampling=self.env.sampling)
        self.steps, self._reset_next = 0, False
        infos = {key: np.array([info[key] for _, _, info in draws]) for key in ("episode", "step")}
        return np.array(self.session.row_prompt_frames[:, -1]), infos

    def step(self, actions):
        if self._reset_next:  # next-step autoreset: every row ended together
            obs, infos = self.reset()
            return obs, np.zeros(self.num_envs), np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool), infos
        actions = np.asarray(actions)
        if not self.action_space.contains(actions.astype(self.action_space.dtype)):
            raise InputError(f"actions {actions.tolist()} are outside the action space {self.action_space}")
        latents = actions if self.env.kind == "latent" else self.env.adapter.to_latent(actions.astype(np.float32))
        frames = self.session.step(latents.astype(np.int64))
        self.steps += 1
        self._reset_next = self.steps >= self.env.max_steps
        rewards = np.array([self.env.goal_reward(frame) for frame in frames])
        return frames, rewards, np.zeros(self.num_envs, bool), np.full(self.num_envs, self._reset_next), {}

    def close_extras(self, **kwargs):
        self.env.close()


class MuJoCoArmEnv(_GenieEnv):
    """The physics twin: the same spaces, the MuJoCo arm world restored at the stored frame."""

    translated = ("latent", "arm commands")

    def __init__(self, run, data, action_space: str = "arm", goal=None, render_mode=None, device: str = "cpu",
                 camera: str | None = None, world_model: str = "video"):
        """camera: the MuJoCo view observed (default: the one the store's episodes were rendered from);
        world_model: the one this twin mirrors (its resolution, actions and truncation)."""
        super().__init__(run, data, action_space, goal, render_mode, device, world_model)
        from genie_robot.sim.scene import recorded_camera
        from genie_robot.sim.world import ArmWorld

        self.world = ArmWorld(camera=camera or recorded_camera(self.starts.store[0]))

    def command_dim(self) -> int:
        from genie_robot.sim.world import COMMAND_NAMES

        return len(COMMAND_NAMES)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        _, state, info = self.starts.draw(self.np_random)
        if not state:
            raise InputError("the store has no recorded MuJoCo state to restore; use episodes of `genie-robot data mujoco`")
        self.world.set_state(state)
        self.frame, self.steps = self.world.render(self.observation_space.shape[0]), 0
        return self.frame, info

    def step(self, action):
        self._check(action)
        command = np.asarray(action, np.float32) if self.kind == "arm" else self.adapter.to_commands(int(action))[0]
        self.world.step(command)
        return self._result(self.world.render(self.observation_space.shape[0]))

    def close(self):
        self.world.close()
        super().close()


gym.register("genie_robot/WorldModel-v0", entry_point=WorldModelEnv, vector_entry_point=WorldModelVectorEnv)
gym.register("genie_robot/MuJoCoArm-v0", entry_point=MuJoCoArmEnv)
