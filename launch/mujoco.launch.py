"""The MuJoCo arm world behind the world model's interface.

    ros2 launch genie_robot mujoco.launch.py
Without ROS launch, the same start-up: genie-robot serve-sim"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    config = Path(get_package_share_directory("genie_robot")) / "config"
    return LaunchDescription([
        DeclareLaunchArgument("params", default_value=str(config / "mujoco.yaml")),
        Node(package="genie_robot", executable="genie_mujoco_sim", name="mujoco_sim", output="screen",
             parameters=[LaunchConfiguration("params")]),
    ])
