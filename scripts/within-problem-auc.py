#!/usr/bin/env python3
"""Within-problem AUC of a verifier's scores over a `ponder eval` database (BENCHMARKS.md, toy task).

  scripts/within-problem-auc.py DB [BUDGET]

Over the sampled search at BUDGET (default 64) of the database's last run with one: the chance
that a correct sample scores above a wrong sample of the same problem (ties count one half),
pairs pooled over problems, by level and overall; once for the stored solution score (the
aggregation the eval used, `last` by default) and once for the lowest step score. On the
labels-only PRM's database of BENCHMARKS ("Why the PRM misranks") it gives its figures:
0.33 / 0.59 / 0.46 / 0.47 / 0.42 by level, 0.46 in all.
"""
import json
import sqlite3
import sys
from collections import defaultdict


def wins(pos, neg):
    """Pairs in which the positive scores higher, ties one half (Mann-Whitney U)."""
    allv = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        mean_rank = 0.5 * (i + 1 + j)
        rank_sum += mean_rank * sum(p for _, p in allv[i:j])
        i = j
    return rank_sum - len(pos) * (len(pos) + 1) / 2.0


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    budget = int(sys.argv[2]) if len(sys.argv) == 3 else 64
    db = sqlite3.connect(sys.argv[1])
    run = db.execute("select max(run_id) from completions where search='sample' and budget=?", (budget,)).fetchone()[0]
    if run is None:
        sys.exit(f"no sampled search at budget {budget} in {sys.argv[1]}")
    rows = db.execute(
        """select c.problem_id, p.level, c.correct, c.score, c.step_scores from completions c
           join problems p on p.run_id = c.run_id and p.problem_id = c.problem_id
           where c.run_id = ? and c.search = 'sample' and c.budget = ?""", (run, budget)).fetchall()
    groups = defaultdict(lambda: {"score": ([], []), "min": ([], [])})  # [wrong, correct]
    level = {}
    for pid, lvl, correct, score, steps in rows:
        steps = json.loads(steps)
        level[pid] = lvl
        groups[pid]["score"][1 if correct else 0].append(score)
        groups[pid]["min"][1 if correct else 0].append(min(steps) if steps else score)
    print(f"run {run}: {len(rows)} samples, {len(groups)} problems")
    for name in ("score", "min"):
        won, pairs = defaultdict(float), defaultdict(int)
        for pid, g in groups.items():
            neg, pos = g[name]
            for key in (f"level {level[pid]}", "all"):
                won[key] += wins(pos, neg)
                pairs[key] += len(pos) * len(neg)
        cells = [f"{k} {won[k] / pairs[k]:.3f} ({pairs[k]} pairs)" if pairs[k] else f"{k} -" for k in sorted(pairs)]
        print(f"{name:>5}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
