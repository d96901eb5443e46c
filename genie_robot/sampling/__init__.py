from genie_robot.sampling.maskgit import DRAWS, ORDERS, SCHEDULES, SamplingConfig, masked_counts, maskgit_decode

__all__ = ["DRAWS", "ORDERS", "SCHEDULES", "SamplingConfig", "maskgit_decode", "masked_counts"]
