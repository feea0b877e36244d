#!/usr/bin/env bash
# HDL on the built-in synthetic data: a UNet-ResNet50 teacher, a FastLiteSSNet student trained with CE +
# Cauchy-Schwarz feature divergence + Dice, then exported to ONNX and timed against its teacher.
# ITERS=4 for a smoke run.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
distilkit train-teacher --data synth-gta --model unet-resnet50 --iters "$ITERS" --val-every "$ITERS" \
  "${SMOKE[@]}" --out "$RUN/teacher"
distilkit distill hdl --teacher "$RUN/teacher/weights/last.safetensors" --data synth-gta --student fastlitessnet \
  --width 1.0 --iters "$ITERS" --val-every "$ITERS" "${SMOKE[@]}" --out "$RUN/student"
distilkit export-onnx "$RUN/student/weights/last.safetensors"
distilkit fps "$RUN/student/weights/last.onnx" "$RUN/teacher/weights/last.safetensors" --iters 10 --warmup 2 \
  --out "$RUN/fps" ${SMOKE:+--imgsz 64 128 --iters 2 --warmup 1}
