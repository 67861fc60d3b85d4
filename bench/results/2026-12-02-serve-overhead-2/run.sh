#!/bin/bash
# Interleaved A/B: fa4ccda (old) vs e8bc293 (new: one-pass encode, added-token filter), both on loopback.
A=/work/main/.cache/assets
M=/tmp/s6-meas  # flint-old = /tmp/flint-s5, flint-new = /tmp/flint-s6e; ab.py and texts.json copied here
start() { # name binary port
  FLINT_ASSETS=$A $2 serve --host 127.0.0.1 --port $3 --device cpu --model minilm=$A/all-MiniLM-L6-v2 --max-batch-requests 32 > $M/$1.log 2>&1 &
  echo $! > $M/$1.pid
  for i in $(seq 1 300); do grep -qs "^listening on" $M/$1.log && break; sleep 0.1; done
}
echo "== serve A/B $(date -u +%T) load $(cat /proc/loadavg)"
start old /tmp/s6-meas/flint-old 18091
start new /tmp/s6-meas/flint-new 18092
timeout 500 python3 $M/ab.py old=18091,new=18092 $M/texts.json ${BLOCKS:-8} ${PER:-150} > $M/${OUTNAME:-ab.txt} 2>&1
kill $(cat $M/old.pid) $(cat $M/new.pid); wait
echo "== end $(date -u +%T) load $(cat /proc/loadavg)"
