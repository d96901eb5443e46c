from genie_robot.models.adapter import ActionAdapter, AdapterConfig
from genie_robot.models.dynamics import DynamicsConfig, DynamicsModel
from genie_robot.models.latent_action import LatentActionConfig, LatentActionModel
from genie_robot.models.tokenizer import TokenizerConfig, VideoTokenizer

MODELS = {
    "tokenizer": (TokenizerConfig, VideoTokenizer),
    "lam": (LatentActionConfig, LatentActionModel),
    "dynamics": (DynamicsConfig, DynamicsModel),
    "adapter": (AdapterConfig, ActionAdapter),
}

__all__ = ["MODELS", "ActionAdapter", "AdapterConfig", "DynamicsConfig", "DynamicsModel", "LatentActionConfig", "LatentActionModel",
           "TokenizerConfig", "VideoTokenizer"]
