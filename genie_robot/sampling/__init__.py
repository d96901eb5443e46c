from genie_robot.sampling.maskgit import ORDERS, SCHEDULES, SamplingConfig, maskgit_decode, masked_counts

__all__ = ["ORDERS", "SCHEDULES", "SamplingConfig", "maskgit_decode", "masked_counts"]
