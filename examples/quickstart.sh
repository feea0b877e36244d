#!/usr/bin/env bash
# Train a teacher on the built-in "game" domain, then measure it on the "camera" domain (the domain gap).
# ITERS=4 for a smoke run.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
distilkit train-teacher --data synth-gta --model segformer-b0 --iters "$ITERS" --val-every "$ITERS" \
  "${SMOKE[@]}" --out "$RUN/teacher"
distilkit evaluate "$RUN/teacher/weights/best.safetensors" --data synth-city ${SMOKE:+--limit 2}
