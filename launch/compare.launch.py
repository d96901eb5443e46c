"""Learned simulator and MuJoCo side by side, driven and scored by the comparison node.

    ros2 launch genie_robot compare.launch.py checkpoint:=/path/to/run
Without ROS launch, the same start-up: genie-robot serve-compare --run /path/to/run"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    config = Path(get_package_share_directory("genie_robot")) / "config"
    params = LaunchConfiguration("params")
    return LaunchDescription([
        DeclareLaunchArgument("checkpoint", description="run directory (tokenizer/, dynamics/, lam/, adapter/)"),
        DeclareLaunchArgument("params", default_value=str(config / "compare.yaml")),
        Node(package="genie_robot", executable="genie_world_model", name="world_model", output="screen",
             parameters=[params, {"checkpoint": LaunchConfiguration("checkpoint")}]),
        Node(package="genie_robot", executable="genie_mujoco_sim", name="mujoco_sim", output="screen",
             parameters=[params]),
        Node(package="genie_robot", executable="genie_sim_compare", name="sim_compare", output="screen",
             parameters=[params]),
    ])
