#!/usr/bin/env bash
# Sets up (as root), builds and runs the test suite (ctest, label unit by default; pass -L slow or
# no label with L2O_TEST_LABEL= for everything).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then bash "$here/scripts/setup.sh"; else sudo bash "$here/scripts/setup.sh"; fi
bash "$here/scripts/build.sh"
label=${L2O_TEST_LABEL-unit}
cd "$here/build"
if [ -n "$label" ]; then
  ctest --output-on-failure -j2 -L "$label"
else
  ctest --output-on-failure -j2
fi
