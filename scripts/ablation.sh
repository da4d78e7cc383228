#!/usr/bin/env bash
# The recipe ablation with statistical power: a synthetic benchmark with a
# larger test split (250 test videos, 4 noun + 4 verb hard negatives each: 1,000
# pairs per kind), the five recipes' tiny presets trained with three seeds each,
# then scripts/eval_suite.lua (means, 95% intervals, paired tests against the
# VTC-only baseline on the same test items).
#   scripts/ablation.sh [STEPS]       default 300 optimizer steps per run
# Environment: KINEMA (binary, default build/kinema), DATA (default data/synth-study),
# RUNS (default runs/study), SEEDS (default "0 1 2"), RECIPES (default all five).
# A finished run (results.json present) is not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
KINEMA=${KINEMA:-build/kinema}
DATA=${DATA:-data/synth-study}
RUNS=${RUNS:-runs/study}
SEEDS=${SEEDS:-0 1 2}
RECIPES=${RECIPES:-baseline stoa svilm oatrans demovlp}

mkdir -p "$RUNS"
[ -f "$DATA/synth.json" ] || "$KINEMA" synth --out "$DATA" --num-test 250 --negatives-per-kind 4
for seed in $SEEDS; do
  for r in $RECIPES; do
    out="$RUNS/$r-s$seed"
    [ -f "$out/results.json" ] && continue
    "$KINEMA" run "scripts/pretrain_$r.lua" --tiny --seed "$seed" --out_dir "$out" --overwrite true \
      --data.root "$DATA" --train.max_steps "$STEPS" 2>&1 | tail -n 40 > "$out.log" || {
        echo "ablation: $r seed $seed failed, see $out.log" >&2; exit 1; }
  done
done
"$KINEMA" run scripts/eval_suite.lua --suite scripts/suites/synth_recipes_seeds.lua --runs "$RUNS" \
  --data.root "$DATA" --out "$RUNS/eval_results.json"
