from genie_robot.data.sampler import ClipDataset, Source
from genie_robot.data.store import Episode, EpisodeStore, EpisodeWriter
from genie_robot.errors import StoreError

__all__ = ["ClipDataset", "Episode", "EpisodeStore", "EpisodeWriter", "Source", "StoreError"]
