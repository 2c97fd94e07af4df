#!/usr/bin/env bash
# Held-out check of our own recipes (depth_deep, fewshot_s4; shaped on the first 46 ground-truth codes) on the
# codes beyond them: tools/rank_corr.py on the scores benchmarks/ranking.py wrote, first 46 codes excluded.
# Session 12: WORK=output/rk11 GT=output/pilot/d8e2_s12.json FIRST=output/pilot/d8e2_46.json
# One JSON line per (recipe, ranking, GT metric) on stdout.
set -euo pipefail
WORK=${WORK:?folder of ranking.py supernets} GT=${GT:?ground-truth file} FIRST=${FIRST:?arch file of the codes left out}
for v in default depth_deep fewshot_s4; do for rb in loss top1; do for gm in top1 ce; do
  ag=()
  [ "$v" != default ] && ag=(--against "$WORK/default/score_k4/submission_$rb.json")
  res=$(python tools/rank_corr.py "$WORK/$v/score_k4/submission_$rb.json" "$GT" --net fmnist28 --zero-cost "$WORK/zero_cost" \
        --exclude "$FIRST" --gt-metric "$gm" "${ag[@]}" --json)
  echo "{\"variant\": \"$v\", \"rank_by\": \"$rb\", \"gt_metric\": \"$gm\", \"result\": $res}"
done; done; done
