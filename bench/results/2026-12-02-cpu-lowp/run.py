#!/usr/bin/env python3
"""Flint's CPU f32 / bf16 / int8 side by side, interleaved: for each round and workload, the runs
alternate (f32 of the base commit's binary when --before is given, then f32, bf16, int8 of this
build), so load from other processes on a shared machine hits every precision alike.

usage: run.py --flint .build/release/flint [--before /path/to/base/flint] [--rounds 2] --out DIR
Writes DIR/raw/*.json (flint bench --json), DIR/results.json and prints a markdown table of the
median p50 ms per workload (decode: ms per token)."""
import argparse, json, os, statistics, subprocess, sys

WORKLOADS = [  # name, flint bench arguments, how to read the ms
    ("MiniLM-L6 s128 b1", ["--model", "minilm-l6", "--seq", "128", "--batch", "1", "--iters", "40"], "rows"),
    ("MiniLM-L6 s128 b8", ["--model", "minilm-l6", "--seq", "128", "--batch", "8", "--iters", "10"], "rows"),
    ("MiniLM-L6 s16 b1", ["--model", "minilm-l6", "--seq", "16", "--batch", "1", "--iters", "100"], "rows"),
    ("BERT-base s128 b1", ["--model", "bert-base", "--seq", "128", "--batch", "1", "--iters", "10", "--max-seconds", "15"], "rows"),
    ("GPT-2 decode b1 (ms/token)", ["--model", "gpt2", "--seq", "16", "--batch", "1", "--prompt-tokens", "16", "--iters", "40",
                                    "--max-seconds", "10"], "decode"),
]


def run(binary, dtype, args, path):
    cmd = [binary, "bench", "--device", "cpu", "--dtype", dtype, *args, "--json", path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    doc = json.load(open(path))
    return doc


def ms(doc, kind):
    row = doc[kind][0]
    return row["p50_ms"] if "p50_ms" in row else row["p50"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flint", required=True)
    p.add_argument("--before")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--only", help="comma-separated workload name prefixes")
    a = p.parse_args()
    os.makedirs(a.out + "/raw", exist_ok=True)
    variants = ([("f32 (base)", a.before, "f32")] if a.before else []) + [(d, a.flint, d) for d in ("f32", "bf16", "int8")]
    results = {}
    for r in range(a.rounds):
        for name, args, kind in WORKLOADS:
            if a.only and not any(name.startswith(o) for o in a.only.split(",")):
                continue
            for label, binary, dtype in variants:
                path = f"{a.out}/raw/{name.split(' (')[0].replace(' ', '_')}-{label.replace(' ', '').replace('(', '-').replace(')', '')}-r{r}.json"
                v = ms(run(binary, dtype, args, path), kind)
                results.setdefault(name, {}).setdefault(label, []).append(v)
                print(f"round {r} {name} {label}: {v:.3f} ms", file=sys.stderr, flush=True)
    json.dump(results, open(a.out + "/results.json", "w"), indent=1)
    labels = [v[0] for v in variants]
    print("| workload | " + " | ".join(labels) + " | bf16 / f32 | int8 / f32 |")
    print("|---" * (len(labels) + 3) + "|")
    for name, per in results.items():
        med = {k: statistics.median(v) for k, v in per.items()}
        cells = [f"{med[l]:.2f}" for l in labels]
        print(f"| {name} | " + " | ".join(cells) + f" | {med['bf16'] / med['f32']:.2f} | {med['int8'] / med['f32']:.2f} |")


if __name__ == "__main__":
    main()
