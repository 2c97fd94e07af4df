#!/usr/bin/env bash
# Distributed supernet training through paddle.distributed.launch.
#
#   bash train_supernet.sh CONFIG [-o key=value ...] [--resume]
#
# With fewshot.split_on set, the one-shot run is followed by one run per few-shot group (starting from
# the one-shot weights) and <output_dir>/fewshot.json, which eval_subnets.py --checkpoint takes.
#
# Environment:
#   NPROC        processes on this node (default: the number of GPUs, or 2 on a CPU-only machine)
#   LAUNCH_ARGS  extra launcher arguments, e.g. "--nnodes 2 --master 10.0.0.1:8090" for several nodes
#   LOG_DIR      launcher logs (default: <train.output_dir, after the -o overrides>/launch)
# CPU threads per process are the cores divided by NPROC unless OMP_NUM_THREADS is set (supernet/__init__.py).
set -euo pipefail
# Paths (the config, -o values, LOG_DIR) are taken from the caller's folder, as with any command.
REPO=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ]; then
  echo "usage: bash train_supernet.sh CONFIG [-o key=value ...] [--resume]" >&2
  exit 2
fi
CONFIG=$1
shift
if [ ! -f "$CONFIG" ]; then
  echo "error: config file $CONFIG does not exist" >&2
  exit 2
fi
if [ -z "${NPROC:-}" ]; then
  NPROC=$(python - <<'PY'
import paddle
n = paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0
print(n if n > 0 else 2)
PY
  )
fi
case "$NPROC" in
  ''|*[!0-9]*|0) echo "error: NPROC=$NPROC must be a whole number >= 1" >&2; exit 2 ;;
esac
# A bad config or override is reported here in one line, not from inside the launcher's workers.
OUT_DIR=$(python "$REPO/train_supernet.py" -c "$CONFIG" "$@" --check_only) || exit $?
LOG_DIR=${LOG_DIR:-$OUT_DIR/launch}
launch() {
  # shellcheck disable=SC2086
  python -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$1" ${LAUNCH_ARGS:-} \
    "$REPO/train_supernet.py" -c "$CONFIG" "${@:2}"
}
launch "$LOG_DIR" "$@"
# Few-shot (fewshot.split_on set): one run per group from the one-shot weights, then the manifest
# that eval_subnets.py --checkpoint takes.
NGROUPS=$(python "$REPO/train_supernet.py" -c "$CONFIG" "$@" --fewshot_groups)
if [ "$NGROUPS" -gt 0 ]; then
  for g in $(seq 0 $((NGROUPS - 1))); do
    launch "$LOG_DIR/group$g" "$@" --fewshot_group "$g"
  done
  python "$REPO/train_supernet.py" -c "$CONFIG" "$@" --fewshot_manifest
fi
