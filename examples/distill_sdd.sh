#!/usr/bin/env bash
# SDD on the built-in synthetic data: a SegFormer-B1 teacher, then a SegFormer-B0 student distilled with
# pixel KD + scale-decoupled region KD, evaluated on its own domain and across the gap. ITERS=4 for a smoke run.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
distilkit train-teacher --data synth-gta --model segformer-b1 --iters "$ITERS" --val-every "$ITERS" \
  "${SMOKE[@]}" --out "$RUN/teacher"
distilkit distill sdd --teacher "$RUN/teacher/weights/last.safetensors" --data synth-gta --student segformer-b0 \
  --scales 1 --scales 2 --scales 4 --iters "$ITERS" --val-every "$ITERS" "${SMOKE[@]}" --out "$RUN/student"
distilkit evaluate "$RUN/student/weights/last.safetensors" --data synth-city ${SMOKE:+--limit 2}
