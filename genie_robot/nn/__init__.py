from genie_robot.nn.quantizer import VectorQuantizer
from genie_robot.nn.transformer import STBlock, STTransformer, TemporalKV

__all__ = ["STBlock", "STTransformer", "TemporalKV", "VectorQuantizer"]
