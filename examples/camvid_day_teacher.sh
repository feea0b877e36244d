#!/usr/bin/env bash
# A teacher on real CamVid day sequences, evaluated on day val and on the dusk sequence (labels only measure).
set -euo pipefail
ROOT=${1:-../shared/data/camvid}
distilkit train-teacher --data camvid-day --data-root "$ROOT" --model unet-resnet18 --imgsz 352 480 --batch 4 \
  --iters 2000 --val-every 500 --name camvid-day
distilkit evaluate runs/train-teacher/camvid-day/weights/best.safetensors --data camvid-dusk --split train --data-root "$ROOT"
