# Sourced by every example: its length and where its runs go.
#   ITERS=4 ./examples/x.sh   a smoke run: tiny crops, 16 training and 2 val images, well under a minute
#   RUN=dir ./examples/x.sh   where the runs go (default: a new runs/examples/<example>-<time> each time, so a
#                             second run never picks up the first run's teacher)
ITERS=${ITERS:-300}
RUN=${RUN:-runs/examples/$(basename "$0" .sh)-$(date +%Y%m%d-%H%M%S)-$$}
SMOKE=()
if [ "$ITERS" -lt 20 ]; then
  SMOKE=(--imgsz 64 128 --batch 2 --train-limit 16 --val-limit 2 --workers 0)
fi
echo "runs of this example: $RUN"
