"""The learned simulator alone.

    ros2 launch genie_robot world_model.launch.py checkpoint:=/path/to/run
Without ROS launch, the same start-up: genie-robot serve --run /path/to/run"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    config = Path(get_package_share_directory("genie_robot")) / "config"
    return LaunchDescription([
        DeclareLaunchArgument("checkpoint", description="run directory (tokenizer/, dynamics/, lam/, adapter/)"),
        DeclareLaunchArgument("params", default_value=str(config / "world_model.yaml")),
        Node(package="genie_robot", executable="genie_world_model", name="world_model", output="screen",
             parameters=[LaunchConfiguration("params"), {"checkpoint": LaunchConfiguration("checkpoint")}]),
    ])
