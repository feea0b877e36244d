#!/usr/bin/env bash
# A teacher on real CamVid day sequences, evaluated on day val and on the dusk sequence (labels only measure).
# ./examples/camvid_day_teacher.sh [CAMVID_ROOT]; ITERS=4 for a smoke run (default 2000).
set -euo pipefail
ITERS=${ITERS:-2000}
source "$(dirname "$0")/_common.sh"
ROOT=${1:-../shared/data/camvid}
SIZE=(--imgsz 352 480 --batch 4)
[ ${#SMOKE[@]} -eq 0 ] || SIZE=()
distilkit train-teacher --data camvid-day --data-root "$ROOT" --model unet-resnet18 "${SIZE[@]}" "${SMOKE[@]}" \
  --iters "$ITERS" --val-every "$(( ITERS < 500 ? ITERS : 500 ))" --out "$RUN/teacher"
distilkit evaluate "$RUN/teacher/weights/best.safetensors" --data camvid-dusk --split train --data-root "$ROOT" \
  ${SMOKE:+--limit 2}
