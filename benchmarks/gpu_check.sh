#!/usr/bin/env bash
# The GPU measurements of issue 18 (preprocess: exact | fast), before and after, in one command.
#
# For a session that has the device tool (one H200 here); about 5 minutes of the 10 a command may run.
# 1. Here, in the checkout root:  make gpu-data
#    (copies ../shared/data/fer2013/{train,val} into data/gpu/fer2013/: git-ignored, about 51 MiB)
# 2. The device tool's run, from the checkout root:
#      command:   bash benchmarks/gpu_check.sh
#      carry:     ["data/gpu"]
#      timeout_s: 570
#    The log comes back as $OUT/gpu_check.log; the RESULT lines are also at the end of the output.
#
# Runs with the device's own python3 (torch, torchvision, timm, pandas, scikit-learn, Pillow, PyYAML are
# there; no .venv travels) and this checkout on PYTHONPATH. Steps, each under its own time limit:
#   parity  benchmarks/parity_fast.py: input tensors fast vs exact on the GPU (48 -> 224/260 up, 400 -> 224 and
#           300 -> 260 down), top-1 agreement on FER2013 val with a resnet10t trained there at 224 px
#   predict benchmarks/bench_predict.py: B0 at 224 and B2 at 260, bf16 + channels_last, 16,384 FER2013 train faces,
#           batch 256: bare forward, predict per mode (exact = before, fast = after), the loader alone per mode
#   train   benchmarks/bench_train.py: B0 at 224 and B2 at 260, SAM, bf16 + channels_last, batch 64, 8 workers
#           (configs/fer2013_gpu.yaml): the bare SAM step, the training loader and two epochs of 6,400 faces per mode
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${FERCORE_GPU_DATA:-data/gpu/fer2013}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
# sizes (QUICK=1: a dry run of the whole flow on a CPU in a few minutes, not a measurement)
if [ "${QUICK:-0}" = 1 ]; then
    IMAGES=128 TRAIN_IMAGES=96 EPOCHS=1 PARITY_SIZE=56 PARITY_EPOCHS=1 BATCH=32 PBATCH=32 WORKERS=0 LIMIT=1
    B0=resnet10t B2=resnet10t
else
    IMAGES=16384 TRAIN_IMAGES=6400 EPOCHS=2 PARITY_SIZE=224 PARITY_EPOCHS=2 BATCH=64 PBATCH=256 WORKERS=8 LIMIT=0
    B0=tf_efficientnet_b0 B2=tf_efficientnet_b2
fi
LOG=${OUT:-/tmp}/gpu_check.log
if [ ! -d "$DATA/train" ] || [ ! -d "$DATA/val" ]; then
    echo "no FER2013 under $DATA (train/ and val/): run 'make gpu-data' in the checkout and carry data/gpu" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 FERCORE_CACHE=/tmp/fercore-cache
FAILED=/tmp/gpu_check.failed
rm -f "$FAILED"
step() {  # step NAME SECONDS COMMAND...: run one measurement under a time limit, keep going after a failure
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date -u +%H:%M:%S), limit ${limit} s): $*"
    timeout "$limit" "$@" || { echo "== $name FAILED (exit $?)"; echo "$name" >>"$FAILED"; }
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
    echo "cores $(nproc)"
    "$PY" -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
    step parity $((90 + LIMIT * 200)) "$PY" benchmarks/parity_fast.py --data-root "$DATA" --device "$DEVICE" \
        --image-size $PARITY_SIZE --epochs $PARITY_EPOCHS --workers $WORKERS
    step predict $((180 + LIMIT * 200)) "$PY" benchmarks/bench_predict.py --device "$DEVICE" --models $B0:224 $B2:260 \
        --images-from "$DATA/train" --images $IMAGES --batch $PBATCH --rounds 8 --predict-rounds 2 --workers $WORKERS
    step train-b0 $((110 + LIMIT * 200)) "$PY" benchmarks/bench_train.py --device "$DEVICE" --arch $B0 --image-size 224 \
        --batch $BATCH --threads 8 --data-root "$DATA" --train-images $TRAIN_IMAGES --epochs $EPOCHS --workers $WORKERS
    step train-b2 $((140 + LIMIT * 200)) "$PY" benchmarks/bench_train.py --device "$DEVICE" --arch $B2 --image-size 260 \
        --batch $BATCH --threads 8 --data-root "$DATA" --train-images $TRAIN_IMAGES --epochs $EPOCHS --workers $WORKERS
    echo "== done ($(date -u +%H:%M:%S)); the RESULT lines:"
} 2>&1 | tee "$LOG"
grep '^RESULT' "$LOG"
if [ -s "$FAILED" ]; then echo "failed steps: $(tr '\n' ' ' <"$FAILED")"; exit 1; fi
