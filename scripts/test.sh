#!/usr/bin/env bash
# Sets up (as root), builds and runs the test suite: ctest (label unit by default; pass -L slow or no
# label with L2O_TEST_LABEL= for everything), which includes the Python tests (pytest) and the replay
# of the fuzzing corpora; then the package: installs to a temporary prefix, builds examples/ against
# it with find_package(l2o) outside the tree and trains a model with the shipped checkpoint, and
# imports the installed Python module.
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

echo "test: the installed package"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$here/build" --prefix "$prefix" >/dev/null
# A copy of examples/ outside the tree, so nothing but the package can be used.
cp -r "$here/examples" "$tmp/examples"
cmake -S "$tmp/examples" -B "$tmp/examples/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/examples/build" -j"$(nproc)" >/dev/null
(cd "$tmp" && L2O_CHECKPOINT_DIR= "$tmp/examples/build/train_with_learned_optimizer") | tee "$tmp/example.txt"
grep -q "^checkpoint: $prefix/share/l2o/checkpoints/mlp_lopt_generalist.pt$" "$tmp/example.txt" || {
  echo "test: the example did not find the shipped checkpoint through the package" >&2
  exit 1
}
"$prefix/bin/l2o" --version >/dev/null
# The installed l2o finds the installed suites (not the source tree's).
(cd "$tmp" && L2O_SUITE_DIR= "$prefix/bin/l2o" suite --list) > "$tmp/suites.txt"
grep -q "^Suites in $prefix/share/l2o/suites " "$tmp/suites.txt" && grep -q "heldout_v1" "$tmp/suites.txt" || {
  echo "test: the installed l2o does not list the installed suites" >&2
  exit 1
}
python_dir=$(cd "$prefix" && ls -d lib/python3*/dist-packages 2>/dev/null | head -1)
if [ -n "$python_dir" ]; then
  # The Python example, against the installed module: it must use the prefix's shipped checkpoint.
  (cd "$tmp" && PYTHONPATH="$prefix/$python_dir" PYTHONDONTWRITEBYTECODE=1 L2O_CHECKPOINT_DIR= \
    /usr/bin/python3 "$tmp/examples/train_with_learned_optimizer.py" 40) | tee "$tmp/example_py.txt"
  grep -q "learned optimizer $prefix/share/l2o/checkpoints/mlp_lopt_generalist.pt" "$tmp/example_py.txt" || {
    echo "test: the installed Python module did not find the shipped checkpoint" >&2
    exit 1
  }
fi
echo "test: ok"
