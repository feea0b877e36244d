#!/usr/bin/env bash
# HDL on the built-in synthetic data: a UNet-ResNet50 teacher, a FastLiteSSNet student trained with CE +
# Cauchy-Schwarz feature divergence + Dice, then exported to ONNX and timed against its teacher.
# ITERS=4 for a smoke run.
set -euo pipefail
ITERS=${ITERS:-300}
distilkit train-teacher --data synth-gta --model unet-resnet50 --iters "$ITERS" --val-every "$ITERS" --name hdl-teacher
distilkit distill hdl --teacher runs/train-teacher/hdl-teacher/weights/last.safetensors --data synth-gta \
  --student fastlitessnet --width 1.0 --iters "$ITERS" --val-every "$ITERS" --name hdl
distilkit export-onnx runs/distill-hdl/hdl/weights/last.safetensors
distilkit fps runs/distill-hdl/hdl/weights/last.onnx runs/train-teacher/hdl-teacher/weights/last.safetensors \
  --iters 10 --warmup 2
