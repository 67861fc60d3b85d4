#!/bin/bash
A=/work/main/.cache/assets
start() { # name binary port
  FLINT_ASSETS=$A $2 serve --host 127.0.0.1 --port $3 --device cpu --model minilm=$A/all-MiniLM-L6-v2 --max-batch-requests 32 > /tmp/meas4/$1.log 2>&1 &
  echo $! > /tmp/meas4/$1.pid
  for i in $(seq 1 300); do grep -qs "^listening on" /tmp/meas4/$1.log && break; sleep 0.1; done
}
echo "== serve A/B $(date -u +%T) load $(cat /proc/loadavg)"
start old /tmp/ci2/.build/release/flint 18091
start new /work/wt-4/.build/release/flint 18092
timeout 400 python3 /tmp/meas/ab.py old=18091,new=18092 /tmp/meas/texts.json 8 150 > /tmp/meas4/ab.txt 2>&1
kill $(cat /tmp/meas4/old.pid) $(cat /tmp/meas4/new.pid); wait
echo "== end $(date -u +%T) load $(cat /proc/loadavg)"
