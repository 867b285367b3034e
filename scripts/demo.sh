#!/usr/bin/env bash
# The main job: set up (as root), build, meta-train the coordinatewise LSTM on DM quadratics, then
# compare it with Adam, RMSProp, NAG and SGD (each at its best learning rate) on held-out quadratics.
# Writes only under runs/ (git-ignored): runs/quadratic/ (checkpoints, training log and curve) and
# runs/quadratic/compare/ (table, plot).
#   demo.sh --update-docs   also regenerates the committed docs/quadratic/{table.md,loss.png,...}
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
update_docs=0
for arg in "$@"; do
  case "$arg" in
    --update-docs) update_docs=1 ;;
    *) echo "usage: demo.sh [--update-docs]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -eq 0 ]; then bash "$here/scripts/setup.sh"; else sudo bash "$here/scripts/setup.sh"; fi
bash "$here/scripts/build.sh" --target l2o_cli
cd "$here"
./build/bin/l2o train --config configs/quadratic_lstm.toml --output_dir runs/quadratic
out=runs/quadratic/compare
[ "$update_docs" -eq 1 ] && out=docs/quadratic
./build/bin/l2o compare --config configs/quadratic_compare.toml --checkpoint "LSTM (learned)=runs/quadratic/best.pt" \
  --output_dir "$out"
echo "done: $out/table.md and $out/loss.png"
