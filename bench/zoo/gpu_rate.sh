#!/usr/bin/env bash
# Time the zoo recipe's training step (README.md: sngan, D of 2 convs per resolution, 2 D steps
# per G step, augmentation, moving average) on a GPU and on the same machine's CPU, in one run:
#   1. BASELINE alone on the GPU (STEPS steps) while BASELINE on the CPU (CPU_STEPS steps, one
#      torch thread, the way the zoo trains here) runs beside it;
#   2. the five default blocks at once on the GPU (STEPS steps each).
# Prints, per run, the steady seconds per step (step 100 to the last, from run/losses.csv), the
# wall and CPU seconds of each phase, and the GPU/CPU ratio. Trains with --no-fid and keeps
# nothing: it is a timing, not a way to ship weights.
#
#   OUT=$OUT bash bench/zoo/gpu_rate.sh                               # on a lent GPU machine
#   DEVICE=cpu STEPS=120 CPU_STEPS=120 BLOCKS=BASELINE OUT=/tmp/r bash bench/zoo/gpu_rate.sh
set -u
: "${OUT:?set OUT to the folder for summary.txt}"
STEPS=${STEPS:-3000}
CPU_STEPS=${CPU_STEPS:-300}
DEVICE=${DEVICE:-cuda}
LIMIT_S=${LIMIT_S:-200}
BLOCKS=${BLOCKS:-"BASELINE N.1.5 B.1.5 Z.1.5 N.3.5"}
PY=${PY:-python3}
WORK=${WORK:-/tmp/gpu-rate}
TIMEFORMAT='%R s wall, %U s user, %S s system'
rm -rf "$WORK"; mkdir -p "$OUT" "$WORK"

recipe() {  # BLOCK DEVICE STEPS THREADS TAG
    PYTHONPATH=src timeout --signal=INT "$LIMIT_S" "$PY" bench/gan_quality.py --preset sngan \
        --last-block "$1" --d-depth 2 --n-d 2 --augment color,translation,cutout --ema 0.999 \
        --milestones "$3" --total-steps 20000 --threads "$4" --device "$2" --no-fid \
        --work "$WORK/$5-$1" > "$WORK/$5-$1.log" 2>&1
}

rate() {  # TAG-BLOCK: steady seconds per step from its losses.csv
    "$PY" - "$WORK/$1/run/losses.csv" "$1" <<'EOF'
import sys
import pandas as pd
try:
    df = pd.read_csv(sys.argv[1])
except (OSError, ValueError) as exc:
    print(f"{sys.argv[2]}: no losses ({exc})")
    raise SystemExit
tail = df[df.step >= 100]
if len(tail) < 2:
    print(f"{sys.argv[2]}: only {int(df.step.max())} steps")
    raise SystemExit
per = (tail.seconds.iloc[-1] - tail.seconds.iloc[0]) / (tail.step.iloc[-1] - tail.step.iloc[0])
print(f"{sys.argv[2]}: {int(df.step.max())} steps, {per:.4f} s/step (steps 100 on)")
EOF
}

{
    echo "== $(date -u +%FT%TZ) $(nvidia-smi -L 2>/dev/null | head -1)"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    echo "-- phase 1: BASELINE on $DEVICE alone, BASELINE on the CPU beside it"
    time {
        recipe BASELINE cpu "$CPU_STEPS" 1 cpu &
        recipe BASELINE "$DEVICE" "$STEPS" 2 solo
        wait
    }
    rate solo-BASELINE
    rate cpu-BASELINE
    echo "-- phase 2: $(echo "$BLOCKS" | wc -w) blocks at once on $DEVICE"
    time {
        for B in $BLOCKS; do recipe "$B" "$DEVICE" "$STEPS" 2 five & done
        wait
    }
    for B in $BLOCKS; do rate "five-$B"; done
} > "$OUT/summary.txt" 2>&1
"$PY" - "$OUT/summary.txt" <<'EOF'
import re
import sys
text = open(sys.argv[1]).read()
per = dict(re.findall(r"^(\S+): \d+ steps, ([\d.]+) s/step", text, re.M))
if "solo-BASELINE" in per and "cpu-BASELINE" in per:
    ratio = float(per["cpu-BASELINE"]) / float(per["solo-BASELINE"])
    with open(sys.argv[1], "a") as f:
        f.write(f"ratio: the GPU step is {ratio:.1f}x faster than one CPU thread's\n")
EOF
cat "$OUT/summary.txt"
for B in $BLOCKS; do tail -n 3 "$WORK/five-$B.log" > "$OUT/five-$B.log.tail" 2>/dev/null; done
