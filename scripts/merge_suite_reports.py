#!/usr/bin/env python3
"""Merges the suite.json files of partial `l2o suite --problems ...` runs of one suite (e.g. halves of
the suite run in parallel on the two cores, or one run per learned optimizer) into one table with the
summary rows of SPEC 8, recomputed from the per-problem scores exactly as src/eval/suite.cpp does.

    scripts/merge_suite_reports.py OUT_DIR RUN[:RENAME=NEW,...] ...

RUN is a folder with suite.json. `:hrnn=hrnn_mnist` relabels a learned optimizer of that run. A
problem found in several runs keeps its baselines from the first run and takes every run's learned
optimizers; the runs must be of the same suite name and version (checked). Writes OUT_DIR/table.md and
OUT_DIR/suite.json.
"""
import json
import math
import os
import statistics
import sys


def load(arg):
    path, _, renames = arg.partition(":")
    with open(os.path.join(path, "suite.json")) as f:
        j = json.load(f)
    mapping = dict(r.split("=", 1) for r in renames.split(",") if r)
    for p in j["problems"]:
        for o in p["optimizers"]:
            if o.get("learned") and o["label"] in mapping:
                o["label"] = mapping[o["label"]]
    return j


def key(o):
    """Learned optimizers by label, baselines by spec (their label carries the problem's best rate)."""
    return o["label"] if o.get("learned") else o["optimizer"]


def ratio_or_inf(v):
    return math.inf if v is None else v


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    runs = [load(a) for a in sys.argv[2:]]
    ident = {(r["suite"], r["version"]) for r in runs}
    if len(ident) != 1:
        sys.exit(f"merge_suite_reports: runs of different suites or versions: {sorted(ident)}")
    problems = {}
    order = []
    for r in runs:
        for p in r["problems"]:
            if p["name"] not in problems:
                problems[p["name"]] = {**p, "optimizers": list(p["optimizers"])}
                order.append(p["name"])
            else:
                have = {key(o) for o in problems[p["name"]]["optimizers"]}
                problems[p["name"]]["optimizers"] += [o for o in p["optimizers"] if o.get("learned") and key(o) not in have]
    labels = []
    for name in order:
        for o in problems[name]["optimizers"]:
            if key(o) not in labels:
                labels.append(key(o))
    summary = []
    for label in labels:
        rows = [(n, o) for n in order for o in problems[n]["optimizers"] if key(o) == label]
        best = [ratio_or_inf(o["ratio_to_adam_best"]) for _, o in rows]
        fixed = [ratio_or_inf(o["ratio_to_adam_fixed"]) for _, o in rows]
        worst_b = max(range(len(rows)), key=lambda i: best[i])
        worst_f = max(range(len(rows)), key=lambda i: fixed[i])
        summary.append({
            "label": label,
            "problems": len(rows),
            "median_ratio_to_adam_best": statistics.median(best),
            "median_ratio_to_adam_fixed": statistics.median(fixed),
            "won_vs_adam_best": sum(b < 1 for b in best),
            "won_vs_adam_fixed": sum(f < 1 for f in fixed),
            "worst_ratio_to_adam_best": [best[worst_b], rows[worst_b][0]],
            "worst_ratio_to_adam_fixed": [fixed[worst_f], rows[worst_f][0]],
            "diverged_seeds": sum(o["diverged"] for _, o in rows),
            "not_learned_seeds": sum(o["not_learned"] for _, o in rows),
            "seeds": sum(o["seeds"] for _, o in rows),
        })
    os.makedirs(out, exist_ok=True)
    merged = {"suite": runs[0]["suite"], "version": runs[0]["version"], "merged_from": sys.argv[2:],
              "problems": [problems[n] for n in order], "summary": summary}
    with open(os.path.join(out, "suite.json"), "w") as f:
        json.dump(merged, f, indent=1)
    g = lambda v: "inf" if v == math.inf else f"{v:.3g}"
    lines = [f"# Held-out suite {runs[0]['suite']} (version {runs[0]['version']}), merged", "",
             "Ratios: mean final full-train loss over seeds / that of Adam at its best grid rate (Adam-best) and of Adam at "
             "1e-3; below 1 is better; won = problems with a ratio below 1; not learned = seeds whose final train loss is "
             "above half the initial one.", "", "## Summary", "",
             "| optimizer | median / Adam-best | median / Adam 1e-3 | won vs Adam-best | won vs Adam 1e-3 | worst / Adam-best | "
             "worst / Adam 1e-3 | diverged seeds | not-learned seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        n = s["problems"]
        lines.append(f"| {s['label']} | {g(s['median_ratio_to_adam_best'])} | {g(s['median_ratio_to_adam_fixed'])} | "
                     f"{s['won_vs_adam_best']}/{n} | {s['won_vs_adam_fixed']}/{n} | {g(s['worst_ratio_to_adam_best'][0])} "
                     f"({s['worst_ratio_to_adam_best'][1]}) | {g(s['worst_ratio_to_adam_fixed'][0])} "
                     f"({s['worst_ratio_to_adam_fixed'][1]}) | {s['diverged_seeds']}/{s['seeds']} | "
                     f"{s['not_learned_seeds']}/{s['seeds']} |")
    lines += ["", "## Per problem", "",
              "| problem | optimizer | final train loss | test accuracy | / Adam-best | / Adam 1e-3 | diverged | not learned |",
              "|---|---|---|---|---|---|---|---|"]
    for name in order:
        for o in problems[name]["optimizers"]:
            acc = o.get("test_accuracy_mean")
            lines.append(f"| {name} | {o['label']} | "
                         f"{g(o['final_train_loss_mean'] if o['final_train_loss_mean'] is not None else math.inf)} ± "
                         f"{g(o['final_train_loss_se'] or 0)} | {'-' if acc is None else f'{acc:.4f}'} | "
                         f"{g(ratio_or_inf(o['ratio_to_adam_best']))} | {g(ratio_or_inf(o['ratio_to_adam_fixed']))} | "
                         f"{o['diverged']}/{o['seeds']} | {o['not_learned']}/{o['seeds']} |")
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:8 + len(summary)]))


if __name__ == "__main__":
    main()
