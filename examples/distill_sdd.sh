#!/usr/bin/env bash
# SDD on the built-in synthetic data: a SegFormer-B1 teacher, then a SegFormer-B0 student distilled with
# pixel KD + scale-decoupled region KD, evaluated on its own domain and across the gap. ITERS=4 for a smoke run.
set -euo pipefail
ITERS=${ITERS:-300}
distilkit train-teacher --data synth-gta --model segformer-b1 --iters "$ITERS" --val-every "$ITERS" --name sdd-teacher
distilkit distill sdd --teacher runs/train-teacher/sdd-teacher/weights/last.safetensors --data synth-gta \
  --student segformer-b0 --scales 1 --scales 2 --scales 4 --iters "$ITERS" --val-every "$ITERS" --name sdd
distilkit evaluate runs/distill-sdd/sdd/weights/last.safetensors --data synth-city
