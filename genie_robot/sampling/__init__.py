from genie_robot.sampling.maskgit import ORDERS, SCHEDULES, SamplingConfig, guide, masked_counts, maskgit_decode

__all__ = ["ORDERS", "SCHEDULES", "SamplingConfig", "guide", "maskgit_decode", "masked_counts"]
