#!/usr/bin/env bash
# System packages the Python packages cannot bring: an OpenGL backend for MuJoCo's offscreen
# renderer (Mesa EGL, software rendering) and a C/C++ toolchain with CMake for the ROS 2
# interfaces built at set-up. Installs only what is missing.
set -euo pipefail
missing=()
ldconfig -p | grep -q 'libEGL.so.1' || missing+=(libegl1 libgl1-mesa-dri)
ldconfig -p | grep -q 'libGL.so.1' || missing+=(libgl1)
# A compiler and CMake build the ROS 2 interface packages PyPI lacks (scripts/build_ros_interfaces.sh).
command -v cmake > /dev/null || missing+=(cmake)
command -v g++ > /dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
