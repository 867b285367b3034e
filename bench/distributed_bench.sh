#!/usr/bin/env bash
# Distributed meta-training throughput (SPEC §6.2, docs/distributed.md): trajectories meta-trained
# per second in MNIST HierarchicalRNN meta-training (configs/l2o_scale_mnist_train.toml: MLP
# 784-20-10 sigmoid, 100 steps in unrolls of 20, no validation here), 1 rank x 1 task against
# 2 ranks x 1 task under torchrun, one thread each, measured in one run. Prints the ratio (target
# >= 1.7x on 2 cores), the bytes all-reduced per meta-iteration and the time in collectives.
#   bash bench/distributed_bench.sh            # ITERATIONS=6 meta-iterations per run by default
# Rates use rank 0's per-iteration seconds from train_log.csv, without the first iteration (warm-up).
# "cores busy" is each whole run's (user + sys) / wall-clock, start-up included: about 1 and 2 on a quiet
# 2-core machine; well below 2 for the 2-rank run means other work took the cores (contended figures).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${L2O_BIN:-$here/build/bin/l2o}
iterations=${ITERATIONS:-6}
python=/usr/bin/python3   # Debian's python3-torch: the python3 first on PATH may lack torch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"
common=(train --config configs/l2o_scale_mnist_train.toml --evaluation_period 0 --meta_iterations "$iterations"
        --threads 1 --quiet --plot false)

# Trajectories per second from a train_log.csv: tasks per iteration / mean seconds per iteration.
rate() {
  awk -F, -v tasks="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next }
                         NR > 2 { s += $c; n++ } END { printf "%.4f %.3f", tasks * n / s, s / n }' "$1/train_log.csv"
}

TIMEFORMAT='%R %U %S'
echo "1 rank x 1 task: $iterations meta-iterations ..." >&2
{ time OMP_NUM_THREADS=1 "$bin" "${common[@]}" -o "$tmp/one" >/dev/null; } 2>"$tmp/one.time"
echo "2 ranks x 1 task (torchrun --nproc_per_node 2): $iterations meta-iterations ..." >&2
{ time OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --redirects 1 --tee 1 --no_python --standalone \
    --nproc_per_node 2 "$bin" "${common[@]}" -o "$tmp/two" >/dev/null 2>"$tmp/two.err"; } 2>"$tmp/two.time" ||
  { cat "$tmp/two.err" >&2; exit 1; }
busy() { awk '{ printf "%.2f", ($2 + $3) / $1 }' "$1"; }

read -r one_rate one_s <<<"$(rate "$tmp/one" 1)"
read -r two_rate two_s <<<"$(rate "$tmp/two" 2)"
traffic=$(grep '^distributed:' "$tmp/two.err" || true)
printf '%-22s %10s %14s %11s\n' "run" "s / iter" "trajectories/s" "cores busy"
printf '%-22s %10s %14s %11s\n' "1 rank x 1 task" "$one_s" "$one_rate" "$(busy "$tmp/one.time")"
printf '%-22s %10s %14s %11s\n' "2 ranks x 1 task" "$two_s" "$two_rate" "$(busy "$tmp/two.time")"
awk -v a="$one_rate" -v b="$two_rate" 'BEGIN { printf "ratio (2 ranks / 1 rank): %.2fx (target >= 1.7x)\n", b / a }'
echo "${traffic:-distributed: (no traffic line found)}"
