from genie_robot.models.dynamics import DynamicsConfig, DynamicsModel
from genie_robot.models.latent_action import LatentActionConfig, LatentActionModel
from genie_robot.models.tokenizer import TokenizerConfig, VideoTokenizer

MODELS = {
    "tokenizer": (TokenizerConfig, VideoTokenizer),
    "lam": (LatentActionConfig, LatentActionModel),
    "dynamics": (DynamicsConfig, DynamicsModel),
}

__all__ = ["MODELS", "DynamicsConfig", "DynamicsModel", "LatentActionConfig", "LatentActionModel",
           "TokenizerConfig", "VideoTokenizer"]
