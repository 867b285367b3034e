#!/usr/bin/env bash
# Fuzzes the file readers and spec strings with libFuzzer + ASan + UBSan (clang-14).
#   scripts/fuzz.sh SECONDS [TARGET...]     targets: idx cifar10 checkpoint config spec (default: all)
#   L2O_FUZZ_RUNS=N scripts/fuzz.sh ...      stop a target after N executions if that comes first
# Builds build-fuzz/ with clang, then runs each target SECONDS seconds, one after the other, on a copy
# of its seed corpus (tests/fuzz/corpus/<target>, never modified here) under build-fuzz/corpus/.
# A crash, hang or sanitizer report ends that target (the reproducer is in build-fuzz/artifacts/<target>/,
# the report in build-fuzz/fuzz_<target>.log); the others still run and the script then fails. Add
# the reproducer to tests/fuzz/crashes/<target>/ once fixed, so that ctest replays it for good.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz.sh SECONDS [idx|cifar10|checkpoint|config|spec ...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(idx cifar10 checkpoint config spec)
if [ "$(id -u)" -eq 0 ]; then bash "$here/scripts/setup.sh" --fuzz; else sudo bash "$here/scripts/setup.sh" --fuzz; fi

build="$here/build-fuzz"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DL2O_FUZZ=ON \
  -DL2O_BUILD_TESTS=OFF -DL2O_BUILD_BENCH=OFF -DL2O_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/%/_fuzz}"

# LibTorch keeps caches alive to the end of the process: leak reports there are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
# The targets write each input to a scratch file: keep that in memory.
[ -d /dev/shm ] && export TMPDIR=${TMPDIR-/dev/shm}
failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" artifacts="$build/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$here/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  [ -d "$here/tests/fuzz/crashes/$t" ] && cp -n "$here/tests/fuzz/crashes/$t/"* "$corpus/" 2>/dev/null || true
  case "$t" in
    cifar10) max_len=16384 ;;   # records are 3073 bytes
    checkpoint) max_len=32768 ;;  # the seeds are 14-24 KB
    *) max_len=4096 ;;
  esac
  log="$build/fuzz_$t.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  (cd "$build" && "$build/bin/${t}_fuzz" "$corpus" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
     -max_len="$max_len" -runs="${L2O_FUZZ_RUNS--1}" -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1) || {
    echo "fuzz: $t FAILED; the report:" >&2
    grep -m1 -A12 -E "ERROR|runtime error|SUMMARY" "$log" >&2 || tail -30 "$log" >&2
    failed+=("$t")
    continue
  }
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
  echo "fuzz: $t ok: $runs(s), corpus $(ls "$corpus" | wc -l) inputs"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
