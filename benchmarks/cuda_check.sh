#!/usr/bin/env bash
# distilkit's CUDA paths on a lent GPU machine (CI has no GPU): the prepared script the guide asks for, run in one
# device call. It checks, each step logged to $OUT/cuda_check.log with its exit status:
#   1. the test suite with CUDA visible (tests that pick `--device auto` run on the GPU)
#   2. train-teacher with --amp on cuda, then a few AMP steps of every distillation method (sdd, cwd, hdl, sakd, duda)
#   3. fps --device cuda --half, teacher against student
#   4. torchrun with NCCL on one GPU (the DDP path)
#   5. export-onnx --fp16, and an INT8/TensorRT run where onnxruntime-gpu/tensorrt are installed there
#
# Prepare here once (the GPU image has torch, onnx, onnxruntime, timm, typer, rich, safetensors, but not these):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl segmentation-models-pytorch av pypng
# Run there (device tool): command "bash benchmarks/cuda_check.sh", carry [".whl"], timeout_s 540.
# Here, to check the script itself: DEV=cpu SKIP_TESTS=1 bash benchmarks/cuda_check.sh (the same steps, no --half
# and no --amp; torchrun then uses gloo).
set -uo pipefail
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
LOG=$OUT/cuda_check.log
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
else
  export PYTHONPATH=$PWD
fi
DK=(python3 -m distilkit)
RUN=/tmp/cuda_runs
rm -rf $RUN
DEV=${DEV:-cuda}
AMP=(--amp)
[ "$DEV" = cpu ] && AMP=()  # bf16 autocast on a CPU without AMX is 30x slower: the dry run checks the steps
COMMON=(--device $DEV "${AMP[@]}" --imgsz 128 256 --batch 4 --train-limit 32 --val-limit 4 --workers 2)
FAILED=0

step() {  # step NAME CMD...: run, log, keep going
  local name=$1
  shift
  echo "=== $name: $*" | tee -a "$LOG"
  local start=$SECONDS
  "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "=== $name: rc $rc in $((SECONDS - start)) s" | tee -a "$LOG"
  [ $rc -eq 0 ] || FAILED=$((FAILED + 1))
}

[ "$DEV" = cpu ] || step gpu python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
step teacher "${DK[@]}" train-teacher --data synth-gta --model unet-resnet18 --iters 20 --val-every 20 \
  "${COMMON[@]}" --out $RUN/teacher
T=$RUN/teacher/weights/last.safetensors
for m in sdd cwd hdl; do
  step "distill-$m" "${DK[@]}" distill $m --teacher $T --data synth-gta --student fastlitessnet --iters 8 \
    --val-every 8 "${COMMON[@]}" --out $RUN/$m
done
step distill-sakd "${DK[@]}" distill sakd --teacher $T --data synth-gta --student fastlitessnet --epochs 1 \
  "${COMMON[@]}" --out $RUN/sakd
step distill-duda "${DK[@]}" distill duda --src synth-gta --tgt synth-city --teacher-model unet-resnet18 \
  --student-model fastlitessnet --stage1-iters 4 --stage3-iters 4 --inconsistency-images 4 --val-every 8 "${COMMON[@]}" --out $RUN/duda
[ "$DEV" = cpu ] || step fps-half "${DK[@]}" fps $T $RUN/cwd/weights/last.safetensors --device $DEV --half --iters 50
step fps-fp32 "${DK[@]}" fps $T $RUN/cwd/weights/last.safetensors --device $DEV --iters 50
step torchrun-nccl torchrun --standalone --nproc-per-node 1 -m distilkit train-teacher --data synth-gta \
  --model unet-resnet18 --iters 8 --val-every 8 "${COMMON[@]}" --out $RUN/ddp
rm -rf $RUN/*.onnx
step onnx-fp16 "${DK[@]}" export-onnx $RUN/cwd/weights/last.safetensors --fp16 --out $RUN/student-fp16.onnx
if python3 -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" 2>/dev/null; then
  step onnx-int8 "${DK[@]}" export-onnx $RUN/cwd/weights/last.safetensors --int8 --calib-data synth-gta \
    --calib-images 8 --out $RUN/student-int8.onnx
  step fps-onnx-cuda "${DK[@]}" fps $RUN/student-fp16.onnx $RUN/student-int8.onnx --device cuda --iters 50
else
  echo "=== onnxruntime has no CUDAExecutionProvider here: INT8/TensorRT on GPU not checked" | tee -a "$LOG"
fi
[ -n "${SKIP_TESTS:-}" ] || step tests python3 -m pytest -x -q tests
echo "=== $FAILED step(s) failed" | tee -a "$LOG"
exit $FAILED
