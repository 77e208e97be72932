#!/usr/bin/env bash
# One-shot GPU run for the demo model (issue 13.4): a 128 px StyleGAN2 trained from scratch on the
# demo's data for at most 8 minutes; the model (fp16), sample grids and metrics land in $OUT.
#
# Prepare the data here (needs ../shared/data; the pack is ~60 MB of WebP, carried along):
#   python bench/demo_data.py pack --source runs/demo-data/balanced --out runs/demo-data/pack.zip
# On the CUDA machine, from the repository root (carry runs/demo-data/pack.zip):
#   bash bench/train_on_gpu.sh
# Afterwards, here, compare with the CPU model at 64 px (face FD needs ../shared/data and dlib):
#   python bench/demo_model.py --model OUT/demo-faces-128.safetensors --eval-resolution 64 \
#       --skip directions projection
# CPU smoke test (a tiny network for ~40 s on 32 images; builds its own small pack):
#   SMOKE=1 bash bench/train_on_gpu.sh
#
# Settings (environment): DATA (folder or zip, default runs/demo-data/pack.zip), OUT (default
# runs/gpu-out), TRAIN_SECONDS (default 450, at most 480, counted from the first training step),
# RESOLUTION (128), PRESET (medium), BATCH (64), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then PY=$PYTHON
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3
fi
export PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu-out}
WORK=${WORK:-runs/gpu-work}
DATA=${DATA:-runs/demo-data/pack.zip}
RESOLUTION=${RESOLUTION:-128}
PRESET=${PRESET:-medium}
BATCH=${BATCH:-64}
TRAIN_SECONDS=${TRAIN_SECONDS:-450}
DEVICE=cuda
EXTRA=(--mixed-precision)
if [[ "${SMOKE:-0}" == 1 ]]; then
    DEVICE=cpu
    PRESET=tiny
    BATCH=4
    TRAIN_SECONDS=${SMOKE_SECONDS:-40}
    EXTRA=(--no-mixed-precision --threads 1)
    if [[ ! -e "$DATA" || "$DATA" == runs/demo-data/pack.zip ]]; then
        DATA=$WORK/smoke-pack.zip
        "$PY" bench/demo_data.py pack --source runs/demo-data/balanced --limit 32 --out "$DATA"
    fi
fi
(( TRAIN_SECONDS > 480 )) && TRAIN_SECONDS=480
[[ -e "$DATA" ]] || { echo "no training data at $DATA (see the header of $0)" >&2; exit 2; }

mkdir -p "$OUT" "$WORK"
export LATENTSTUDIO_CACHE_DIR=$WORK/cache
RUN=$WORK/run-$RESOLUTION
rm -rf "$RUN"
if [[ "$DEVICE" == cuda ]]; then
    "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
fi

# --kimg is only an upper bound: the run is stopped by time through its control file, which
# writes a checkpoint and exports the EMA generator before the process exits.
"$PY" main.py train stylegan2 --data "$DATA" --alpha-mask --resolution "$RESOLUTION" \
    --preset "$PRESET" --batch "$BATCH" --kimg 100000 --device "$DEVICE" "${EXTRA[@]}" \
    --fp16-export --sample-minutes 2 --checkpoint-minutes 100 --keep-checkpoints 1 \
    --tick-seconds 20 --seed 0 --name "demo-faces-$RESOLUTION" --out "$RUN" \
    > "$OUT/train.log" 2>&1 &
PID=$!
# The clock starts with the first training step (status "running"), or 3 minutes after the launch
# if imports and data decoding take that long.
LAUNCH=$SECONDS
until grep -q '"running"' "$RUN/status.json" 2> /dev/null || (( SECONDS - LAUNCH > 180 )); do
    kill -0 "$PID" 2> /dev/null || break
    sleep 1
done
echo "training started $((SECONDS - LAUNCH)) s after the launch"
START=$SECONDS
while kill -0 "$PID" 2> /dev/null && (( SECONDS - START < TRAIN_SECONDS )); do
    sleep 2
done
request_stop() {
    mkdir -p "$RUN"
    printf '{"command": "stop", "time": %s}\n' "$(date +%s)" > "$RUN/.control.tmp"
    mv "$RUN/.control.tmp" "$RUN/control.json"
}
if kill -0 "$PID" 2> /dev/null; then
    echo "stopping after $((SECONDS - START)) s"
    # The process writes "run" into control.json when its loop starts: a stop written earlier
    # (a slow start) is overwritten, so it is repeated until the process has gone.
    for _ in $(seq 180); do
        kill -0 "$PID" 2> /dev/null || break
        grep -q '"stop"' "$RUN/control.json" 2> /dev/null || request_stop
        sleep 1
    done
    kill "$PID" 2> /dev/null || true
fi
wait "$PID" || echo "training exited with status $? (130 = stopped on request; see $OUT/train.log)"

[[ -f "$RUN/model.safetensors" ]] || { echo "no model was written" >&2; tail -20 "$OUT/train.log" >&2; exit 1; }
cp "$RUN/model.safetensors" "$OUT/demo-faces-$RESOLUTION.safetensors"
cp "$RUN/metrics.jsonl" "$RUN/status.json" "$OUT/" 2> /dev/null || true
LAST_SAMPLE=$(ls "$RUN/samples/"*.png 2> /dev/null | tail -1 || true)
[[ -n "$LAST_SAMPLE" ]] && cp "$LAST_SAMPLE" "$OUT/samples-last.png"
"$PY" - "$RUN" << 'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
metrics = run / "metrics.jsonl"
lines = metrics.read_text().splitlines() if metrics.is_file() else []
ticks = [json.loads(line) for line in lines if line]
status = json.loads((run / "status.json").read_text())
rates = [t["images_per_s"] for t in ticks if t.get("images_per_s")]
print(f"state {status.get('state')}, {status.get('images_seen', 0) / 1000:.1f} kimg, "
      f"{max(rates) if rates else 0:.1f} img/s at best, last tick {ticks[-1] if ticks else {}}")
EOF
ls -l "$OUT"
