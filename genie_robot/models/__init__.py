from genie_robot.models.adapter import ActionAdapter, AdapterConfig
from genie_robot.models.checkpoint import MODELS
from genie_robot.models.dynamics import DynamicsConfig, DynamicsModel
from genie_robot.models.latent_action import LatentActionConfig, LatentActionModel
from genie_robot.models.state_probe import ProbeConfig, StateProbe
from genie_robot.models.tokenizer import TokenizerConfig, VideoTokenizer

__all__ = ["MODELS", "ActionAdapter", "AdapterConfig", "DynamicsConfig", "DynamicsModel", "LatentActionConfig", "LatentActionModel",
           "ProbeConfig", "StateProbe", "TokenizerConfig", "VideoTokenizer"]
