#!/usr/bin/env bash
# Data-parallel training with torchrun: 2 processes on this machine (gloo on the CPU, NCCL on GPUs).
# --batch is per process: a global batch of 8 here. Rank 0 writes the one run directory. ITERS=4 to smoke.
set -euo pipefail
ITERS=${ITERS:-200}
source "$(dirname "$0")/_common.sh"
torchrun --standalone --nproc-per-node 2 -m distilkit train-teacher --data synth-gta --model unet-resnet18 \
  --batch 4 --iters "$ITERS" --val-every "$ITERS" "${SMOKE[@]}" --out "$RUN/ddp"
