#!/bin/bash
# interleaved: main (9028f4d) vs this branch, f32 and int8
MAIN=/tmp/ci/.build/release/flint
MINE=/tmp/wt13b/flint-u; export FLINT_INT8_SCHEME=u7s7
OUT=/tmp/wt13b/bench/out; mkdir -p $OUT
for round in 1 2; do
 for bin in main mine; do
  B=$MAIN; [ $bin = mine ] && B=$MINE
  for dt in f32 int8; do
   echo "=== round $round $bin $dt load: $(cut -d' ' -f1-3 /proc/loadavg)"
   $B bench model --model minilm-l6 --device cpu --dtype $dt --seq 128 --batch 1,8 --iters 30 --max-seconds 5 --json $OUT/r${round}-$bin-$dt-minilm128.json 2>&1 | tail -4
   $B bench model --model minilm-l6 --device cpu --dtype $dt --seq 16 --batch 1 --iters 60 --max-seconds 3 --json $OUT/r${round}-$bin-$dt-minilm16.json 2>&1 | tail -3
   $B bench model --model bert-base --device cpu --dtype $dt --seq 128 --batch 1 --iters 10 --max-seconds 5 --json $OUT/r${round}-$bin-$dt-bert128.json 2>&1 | tail -3
  done
 done
done
echo "end load: $(cut -d' ' -f1-3 /proc/loadavg)"
