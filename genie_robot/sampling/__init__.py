from genie_robot.sampling.maskgit import ORDERS, SCHEDULES, SamplingConfig, masked_counts, maskgit_decode

__all__ = ["ORDERS", "SCHEDULES", "SamplingConfig", "maskgit_decode", "masked_counts"]
