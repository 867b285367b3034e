#!/usr/bin/env bash
# The main job: set up (as root), build, meta-train the coordinatewise LSTM on DM quadratics, then
# compare it with Adam, RMSProp, NAG and SGD (each at its best learning rate) on held-out quadratics.
# Writes runs/quadratic/ (checkpoints, training log and curve) and docs/quadratic/ (table, plot).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then bash "$here/scripts/setup.sh"; else sudo bash "$here/scripts/setup.sh"; fi
bash "$here/scripts/build.sh" --target l2o_cli
cd "$here"
./build/bin/l2o train --config configs/quadratic_lstm.toml --output_dir runs/quadratic
./build/bin/l2o compare --config configs/quadratic_compare.toml --checkpoint "LSTM (learned)=runs/quadratic/best.pt" \
  --output_dir docs/quadratic
echo "done: docs/quadratic/table.md and docs/quadratic/loss.png"
