#!/usr/bin/env bash
# Train a teacher on the built-in "game" domain, then measure it on the "camera" domain (the domain gap).
set -euo pipefail
distilkit train-teacher --data synth-gta --model segformer-b0 --iters 300 --val-every 100 --name quickstart
distilkit evaluate runs/train-teacher/quickstart/weights/best.safetensors --data synth-city
