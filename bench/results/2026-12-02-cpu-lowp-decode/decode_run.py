#!/usr/bin/env python3
"""GPT-2 decode b1 ms/token, f32 / bf16 / int8 of a base binary and of this build, interleaved per round
(base f32, base bf16, base int8, f32, bf16, int8, next round ...), so load from other processes on a
shared machine hits every variant alike. Records the 1-minute load average before each run.

usage: decode_run.py --flint .build/release/flint --before /path/to/base/flint [--rounds 5] --out DIR
Writes DIR/raw/*.json (flint bench --json), DIR/decode.json and prints a markdown table: median over
rounds of the p50 ms/token, each dtype's ratio to the same binary's f32, and per-round ratios."""
import argparse, json, os, statistics, subprocess, sys

ARGS = ["--model", "gpt2", "--seq", "16", "--batch", "1", "--prompt-tokens", "16", "--iters", "40", "--max-seconds", "10"]


def decode_ms(binary, dtype, path):
    cmd = [binary, "bench", "--device", "cpu", "--dtype", dtype, *ARGS, "--json", path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    row = json.load(open(path))["decode"][0]
    return row["p50_ms"] if "p50_ms" in row else row["p50"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flint", required=True)
    p.add_argument("--before", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out + "/raw", exist_ok=True)
    variants = [(b, d) for b in ("before", "after") for d in ("f32", "bf16", "int8")]
    runs = []
    for r in range(a.rounds):
        for binary, dtype in variants:
            load = os.getloadavg()[0]
            ms = decode_ms(a.before if binary == "before" else a.flint, dtype, f"{a.out}/raw/{binary}-{dtype}-r{r}.json")
            runs.append({"round": r, "binary": binary, "dtype": dtype, "ms": ms, "load1": load})
            print(f"round {r} {binary} {dtype}: {ms:.2f} ms/token (load {load:.1f})", file=sys.stderr, flush=True)
    json.dump(runs, open(a.out + "/decode.json", "w"), indent=1)
    med = {(b, d): statistics.median(x["ms"] for x in runs if (x["binary"], x["dtype"]) == (b, d)) for b, d in variants}
    loads = [x["load1"] for x in runs]
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}, median {statistics.median(loads):.1f}")
    print("| binary | f32 ms/token | bf16 | int8 | bf16 / f32 | int8 / f32 | per-round int8 / f32 |")
    print("|---|---|---|---|---|---|---|")
    for b in ("before", "after"):
        per_round = []
        for r in range(a.rounds):
            v = {x["dtype"]: x["ms"] for x in runs if x["round"] == r and x["binary"] == b}
            per_round.append(f"{v['int8'] / v['f32']:.2f}")
        print(f"| {b} | {med[(b, 'f32')]:.2f} | {med[(b, 'bf16')]:.2f} | {med[(b, 'int8')]:.2f} | "
              f"{med[(b, 'bf16')] / med[(b, 'f32')]:.2f} | {med[(b, 'int8')] / med[(b, 'f32')]:.2f} | {' '.join(per_round)} |")


if __name__ == "__main__":
    main()
