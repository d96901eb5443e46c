#!/usr/bin/env bash
# Builds the ROS 2 message packages that PyPI does not carry (today: simulation_interfaces,
# vendored as published in ros_interfaces/) with the rosidl generators and ament_cmake from
# PyPI, and installs them into the venv prefix next to the ros-* wheels: C, C++ and Python
# type support, so rclpy serves and calls them like any message package.
# Usage: scripts/build_ros_interfaces.sh VENV   (make setup runs it; under 2 min on 2 cores)
set -euo pipefail
venv="$(cd "${1:-.venv}" && pwd)"
mkdir -p build
for package in ros_interfaces/*/; do
  name="$(basename "$package")"
  build="build/$name"
  cmake -S "$package" -B "$build" -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$build.configure.log" 2>&1 \
    || { tail -30 "$build.configure.log"; echo "configuring $name failed (log: $build.configure.log)"; exit 1; }
  cmake --build "$build" -j "$(nproc)" > "$build.build.log" 2>&1 \
    || { tail -30 "$build.build.log"; echo "building $name failed (log: $build.build.log)"; exit 1; }
  cmake --install "$build" > /dev/null
  "$venv/bin/python" -c "import importlib; importlib.import_module('$name.srv')" \
    || { echo "$name built but its Python package does not import"; exit 1; }
  echo "built ROS 2 interfaces: $name"
done
