#!/bin/bash
# Interleaved A/B: before = main at aa0be04 (QKV/FFN bf16), after = branch s5-h3 (QKV/FFN int8 g64), int8, 2 threads.
# Usage: run.sh OUTDIR  (BASE/MINE: the two release builds' repository roots)
BASE=${BASE:-/tmp/h3-base}; MINE=${MINE:-/tmp/h3-mine}; OUT=${1:-/tmp/h3-bench}; mkdir -p $OUT
for round in 1 2; do
 for who in base mine; do
  R=$BASE; [ $who = mine ] && R=$MINE
  cd $R
  echo "=== round $round $who load: $(cut -d' ' -f1-3 /proc/loadavg)"
  .build/release/flint bench --device cpu --dtype int8 --threads 2 --model .cache/assets/all-MiniLM-L6-v2 --seq 16 --batch 1 \
    --iters 200 --max-seconds 3 --json $OUT/r$round-$who-s16.json 2>&1 | tail -2
  .build/release/flint bench --device cpu --dtype int8 --threads 2 --model .cache/assets/all-MiniLM-L6-v2 --seq 128 --batch 1,8 \
    --iters 200 --max-seconds 3 --json $OUT/r$round-$who-s128.json 2>&1 | tail -3
 done
done
echo "end load: $(cut -d' ' -f1-3 /proc/loadavg)"
