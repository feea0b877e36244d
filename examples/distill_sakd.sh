#!/usr/bin/env bash
# SAKD over pixel KD on the built-in synthetic data: each epoch trains on half the images, chosen by a
# quality-diversity DPP, with a per-image distillation strength. ITERS=4 for a smoke run (one epoch on 1% of
# the images).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
EPOCHS=4
RATIO=0.5
if [ ${#SMOKE[@]} -gt 0 ]; then EPOCHS=1; RATIO=0.01; fi
distilkit train-teacher --data synth-gta --model segformer-b1 --iters "$ITERS" --val-every "$ITERS" \
  "${SMOKE[@]}" --out "$RUN/teacher"
distilkit distill sakd --teacher "$RUN/teacher/weights/last.safetensors" --data synth-gta --student segformer-b0 \
  --base kd --ratio "$RATIO" --epochs "$EPOCHS" --select-every 1 "${SMOKE[@]}" --out "$RUN/student"
