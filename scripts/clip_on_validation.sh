#!/usr/bin/env bash
# Chooses the log-learning-rate clip of a trained HierarchicalRNN on the validation problems
# (@nn_validation: disjoint from the training families and from the held-out suite), not on the suite:
# each of the four problems runs 3,000 steps x 2 seeds for the checkpoint under every option string,
# beside Adam 1e-3, and the table printed at the end gives each variant's mean final loss relative to
# Adam's, per problem and as a geometric mean.
#   scripts/clip_on_validation.sh CHECKPOINT OUT_DIR [VARIANTS...]
# VARIANTS are option strings (default: max_log_lr=33 max_log_lr=-4 max_log_lr=-5 max_log_lr=-6
# max_log_lr=-5,min_log_lr=-10 max_log_lr=-5,min_log_lr=-12).
# Needs build/bin/l2o (or L2O_BIN) and the data of `l2o problems`.
set -euo pipefail
ck=$1 out=$2
shift 2
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(max_log_lr=33 max_log_lr=-4 max_log_lr=-5 max_log_lr=-6
                                         max_log_lr=-5,min_log_lr=-10 max_log_lr=-5,min_log_lr=-12)
l2o=${L2O_BIN:-$(dirname "$0")/../build/bin/l2o}
problems=(
  "mlp:dataset=fashion_mnist,hidden=150,act=relu,init=torch,batch=100,objective_subset=1000"
  "mlp:dataset=mnist,hidden=10-10,act=tanh,init=torch,batch=100,objective_subset=1000"
  "mlp:dataset=random,features=24,classes=6,samples=2000,hidden=150,act=sigmoid,init=reference,batch=100,objective_subset=1000"
  "conv:dataset=fashion_mnist,filters=7x7x4,act=relu,init=torch,batch=100,objective_subset=256"
)
args=()
# A label may not hold '=': max_log_lr=-5,min_log_lr=-10 is labelled max_log_lr-5_min_log_lr-10.
for v in "${variants[@]}"; do l=${v//=/}; args+=(--checkpoint "${l//,/_}=$ck:$v"); done
for i in "${!problems[@]}"; do
  [ -f "$out/p$i/summary.json" ] || "$l2o" compare --problem "${problems[$i]}" --num_steps 3000 --seeds 2 \
      --baselines adam:lr=0.001 --threads 1 "${args[@]}" -o "$out/p$i"
done
/usr/bin/python3 - "$out" "${#problems[@]}" <<'PY'
import json, math, sys
out, n = sys.argv[1], int(sys.argv[2])
rows = {}
for i in range(n):
    s = json.load(open(f"{out}/p{i}/summary.json"))
    opts = s["optimizers"] if "optimizers" in s else s["summaries"]
    adam = [o for o in opts if o["label"].startswith("adam")][0]["final_loss_mean"]
    for o in opts:
        if not o["label"].startswith("adam"):
            rows.setdefault(o["label"], []).append(o["final_loss_mean"] / adam)
print("variant".ljust(30) + "  ".join(f"p{i}" .rjust(6) for i in range(n)) + "  geo-mean (final loss / Adam 1e-3's)")
for k, v in rows.items():
    print(f"{k:28s}  " + "  ".join(f"{x:6.3f}" for x in v) + f"  {math.exp(sum(map(math.log, v)) / len(v)):6.3f}")
PY
