#!/usr/bin/env bash
# SAKD over pixel KD on the built-in synthetic data: each epoch trains on half the images, chosen by a
# quality-diversity DPP, with a per-image distillation strength. ITERS=4 EPOCHS=1 RATIO=0.01 for a smoke run.
set -euo pipefail
ITERS=${ITERS:-300}
EPOCHS=${EPOCHS:-4}
RATIO=${RATIO:-0.5}
distilkit train-teacher --data synth-gta --model segformer-b1 --iters "$ITERS" --val-every "$ITERS" --name sakd-teacher
distilkit distill sakd --teacher runs/train-teacher/sakd-teacher/weights/last.safetensors --data synth-gta \
  --student segformer-b0 --base kd --ratio "$RATIO" --epochs "$EPOCHS" --select-every 1 --name sakd
