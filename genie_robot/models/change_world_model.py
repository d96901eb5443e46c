"""The change-token world model as an interactive simulator: the LAM, the change tokenizer and
its dynamics behind the interface of the video world model (models/world_model.py), so that
eval, play, planning, the environments and the ROS node run either.

A session remembers frames as the model decoded them, the change tokens that led into each and
the actions out of each. A step predicts the change tokens out of the last frame by MaskGIT over
the window (models/change_dynamics.py) and the tokenizer decodes the next frame from the last.
There is no cache: a window of 16 slots of 16 tokens costs less to recompute than the video
model's cached step over 256 tokens. The prompt is the tokenizer's reading of the real frames
(from the first, each next one decoded from the last with the change read from the truth)."""
from __future__ import annotations

import numpy as np
import torch

from genie_robot.errors import InputError
from genie_robot.models.change_dynamics import next_changes
from genie_robot.models.checkpoint import check_compatible
from genie_robot.models.inputs import as_video, check_actions
from genie_robot.models.world_model import Session, Simulator


class ChangeWorldModel(Simulator):
    """Delta-IRIS-style tokens of what changes, predicted by Genie's MaskGIT dynamics."""

    kind = "change"

    def __init__(self, tokenizer, dynamics, lam, precision: str = "fp32"):
        # The tokenizer's decoder reads the latent action of every transition: a prompt's come from the LAM.
        check_compatible({"change_tokenizer": tokenizer.config, "change_dynamics": dynamics.config, "lam": lam.config})
        self.tokenizer, self.dynamics = tokenizer.eval(), dynamics.eval()
        super().__init__(lam, tokenizer.config.image_size, dynamics.config.num_actions, dynamics.config.max_frames + 1,
                         next(dynamics.parameters()).device, precision)

    @torch.no_grad()
    def read(self, video, actions=None) -> np.ndarray:
        """The tokenizer's reading of a video [T, H, W, 3] (uint8 [T, H, W, 3]: the first frame,
        then each decoded from the last with the change read from the truth), with the LAM's
        actions or the given ones [T-1]."""
        video = as_video(video, self.image_size, "video")
        if actions is None:
            actions = self.infer_actions(video) if len(video) > 1 else np.zeros(0, np.int64)
        actions = check_actions(actions, self.num_actions).reshape(-1)
        if len(actions) != len(video) - 1:
            raise InputError(f"reading {len(video)} frames needs {len(video) - 1} actions, got {len(actions)}")
        return self.tokenizer.read(self._tensor(video), torch.from_numpy(actions).to(self.device)[None])[0][0].cpu().numpy()

    def reconstruct(self, video) -> np.ndarray:
        """What the tokenizer keeps of a video: its reading with the LAM's actions."""
        return self.read(video)

    def _session(self, frames_RTHWC, actions_RT, seeds, sampling, memory, use_cache) -> ChangeSession:
        return ChangeSession(self, frames_RTHWC, actions_RT, seeds, sampling, memory)


class ChangeSession(Session):
    """`ChangeWorldModel`'s session (see `Session`); it keeps no cache, so `use_cache` has no effect."""

    def __init__(self, wm: ChangeWorldModel, frames_RTHWC, actions_RT, seeds, sampling, memory):
        super().__init__(wm, seeds, sampling, memory)
        with wm.autocast(), torch.no_grad():
            read_RTHWC, changes_RTgg = wm.tokenizer.read(frames_RTHWC, actions_RT)
        rows = self.batch // len(read_RTHWC)  # a prompt shared by every row is read once
        self.row_prompt_frames = np.repeat(read_RTHWC.cpu().numpy(), rows, axis=0)
        g = wm.dynamics.config.grid
        none_R1gg = torch.full((len(read_RTHWC), 1, g, g), wm.dynamics.config.none_id, dtype=torch.long, device=wm.device)
        # The window: frames as decoded, the change into each (none for the first), the action out of each but the last.
        self.frames_BTHWC = read_RTHWC.repeat_interleave(rows, dim=0)
        self.changes_in_BTgg = torch.cat([none_R1gg, changes_RTgg], dim=1).repeat_interleave(rows, dim=0)
        self.actions_BT = actions_RT.repeat_interleave(rows, dim=0)

    @property
    def history(self) -> int:
        return self.frames_BTHWC.shape[1]

    def _forget_oldest(self) -> None:
        self.frames_BTHWC, self.actions_BT = self.frames_BTHWC[:, 1:], self.actions_BT[:, 1:]
        self.changes_in_BTgg = self.changes_in_BTgg[:, 1:].clone()
        self.changes_in_BTgg[:, 0] = self.wm.dynamics.config.none_id  # as a training window's first frame

    def _advance(self, actions_B: torch.Tensor) -> np.ndarray:
        wm = self.wm
        if self.history >= self.memory:  # the new frame would not fit in the window
            self._forget_oldest()
        actions_BT = torch.cat([self.actions_BT, actions_B[:, None]], dim=1)
        out_Bgg = next_changes(wm.dynamics, self.frames_BTHWC, self.changes_in_BTgg, actions_BT, self.sampling,
                               self.generators, wm.tokenizer.quantizer)
        new_BHWC = wm.tokenizer.decode(self.frames_BTHWC[:, -1], out_Bgg, actions_B)
        self.frames_BTHWC = torch.cat([self.frames_BTHWC, new_BHWC[:, None]], dim=1)
        self.changes_in_BTgg = torch.cat([self.changes_in_BTgg, out_Bgg[:, None]], dim=1)
        self.actions_BT = actions_BT
        return new_BHWC.cpu().numpy()
