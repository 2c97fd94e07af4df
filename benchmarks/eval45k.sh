#!/usr/bin/env bash
# The 45k scoring run, as a user would run it: the official list in N contiguous shards,
# one after another, each under paddle.distributed.launch with 2 CPU ranks x 1 thread (one per core),
# then the shard submissions merged. Resumable: run the same command again after any stop; every
# shard continues from its journals (a journal of another checkpoint or settings is refused).
#
#   benchmarks/eval45k.sh output/supernet_d8/supernet.pdparams output/eval45k
#
# Env: SHARDS (8), NPROC (2), ARCHS (../shared/data/CVPR_2022_NAS_Track1_test.json),
#      VAL_IMAGES (2000), CALIB (4). Afterwards:
#   python benchmarks/eval_run.py OUT --archs ARCHS --out benchmarks/results/eval45k.json
#   python tools/report.py ...   (plots: predictions vs MACs, GT codes marked)
set -euo pipefail
ckpt=${1:?usage: eval45k.sh CHECKPOINT OUT_DIR}
out=${2:?usage: eval45k.sh CHECKPOINT OUT_DIR}
shards=${SHARDS:-8}
nproc=${NPROC:-2}
archs=${ARCHS:-../shared/data/CVPR_2022_NAS_Track1_test.json}
cd "$(dirname "$0")/.."
[ -f "$ckpt" ] || { echo "error: checkpoint $ckpt: no such file" >&2; exit 2; }
[ -f "$archs" ] || { echo "error: ARCHS $archs: no such file" >&2; exit 2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$out"
for ((i = 0; i < shards; i++)); do
  echo "$(date -u +%FT%TZ) shard $i/$shards"
  python -m paddle.distributed.launch --nproc_per_node "$nproc" --log_dir "$out/launch_s$i" \
    eval_subnets.py --checkpoint "$ckpt" --archs "$archs" --out "$out" --shard "$i/$shards" \
    --val-images "${VAL_IMAGES:-2000}" --calib-batches "${CALIB:-4}"
done
parts=()
for ((i = 0; i < shards; i++)); do parts+=("$out/submission.s${i}of${shards}.json"); done
python tools/arch_files.py merge "$out/submission.json" "${parts[@]}" --order "$archs"
echo "$(date -u +%FT%TZ) merged: $out/submission.json"
