#!/usr/bin/env bash
# The main job: set up and build, then test-time compute on the toy arithmetic task (models/toy,
# made by `ponder train-toy`): every strategy at budgets 1 to 64 over the toy test set, and
# every strategy guided by the generator's own confidence, into SQLite, then the report (Markdown on
# standard output; report.md and plots in build/toy-report).
# Run again, it resumes: what is stored is not redone.
#   scripts/run.sh [extra ponder eval flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
toy=$root/models/toy
db=$root/build/toy-eval.sqlite
"$root/build/ponder" eval --dataset "$toy/toy-test.jsonl" --model "$toy/toy-generator.gguf" \
  --prm "$toy/toy-prm.gguf" --strategies majority,best-of-n,weighted-best-of-n,beam,dvts \
  --budgets 1,4,16,64 --max-tokens 192 --seed 1 --db "$db" "$@"
# Every strategy again with the generator's own confidence as the verifier instead of the PRM
# (a run of its own): best-of-N's solution scores, beam search's and DVTS's step scores.
"$root/build/ponder" eval --dataset "$toy/toy-test.jsonl" --model "$toy/toy-generator.gguf" \
  --confidence mean --strategies majority,best-of-n,weighted-best-of-n,beam,dvts \
  --budgets 1,4,16,64 --max-tokens 192 --seed 1 --db "$db" "$@"
exec "$root/build/ponder" report --db "$db" --out "$root/build/toy-report"
