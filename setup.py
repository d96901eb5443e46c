"""For colcon (ROS 2 ament_python): pyproject.toml holds the package; this only adds the
files a ROS package installs under share/genie_robot (package.xml, launch/, config/) and its
ament index marker, so `ros2 launch genie_robot ...` finds them."""
from glob import glob

from setuptools import setup

setup(data_files=[
    ("share/ament_index/resource_index/packages", ["resource/genie_robot"]),
    ("share/genie_robot", ["package.xml"]),
    ("share/genie_robot/launch", glob("launch/*.launch.py")),
    ("share/genie_robot/config", glob("config/*.yaml")),
])
