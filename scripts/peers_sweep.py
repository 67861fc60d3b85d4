#!/usr/bin/env python3
"""Latency sweeps of the peers a user would otherwise pick, at Flint's sweep points, in Flint's sweep format.

Engines (CPU, fp32, the same --threads for all):
  torch-eager  HF transformers BertModel on PyTorch eager (default sdpa attention), torch.inference_mode
  ort          ONNX Runtime CPUExecutionProvider, ORT_ENABLE_ALL, on a TorchScript export of the same model
               (opset 17, dynamic batch and sequence axes, eager attention so ORT's fusions can match it)
  flint        with --flint BIN: `flint bench --sweep` one point at a time, interleaved with the peers
Models: bert-base (768 hidden, 12 layers, 12 heads, 3072 FFN) and minilm-l6 (384, 6, 12, 1536), vocab 30522,
random weights (torch.manual_seed(0)); Flint's built-ins of the same names have the same shapes and their own
seeded random weights (latency does not depend on the values). Inputs: random ids, mask 1, token types 0.

Protocol, for every engine (Flint's Timing.measure): 10 warm-ups (stopping early after 5 s), then up to --iters
timed runs (stopping early after --max-seconds); statistic p50 (numpy's linear interpolation). Points run
smallest first; at every point the engines run one after another in an order rotated from point to point, so
drift on a shared machine hits them alike. ORT's output is checked against torch's (max |diff|) before timing.

Writes {"schema": "flint-sweep-peers/1", ..., "sweeps": [one flint-sweep/1 document per engine and model]}, which
`flint bench --compare FILE` reads (and `--load FILE` for Flint's own interleaved points).

usage: peers_sweep.py --out FILE [--models bert-base,minilm-l6] [--batch 1,4,16,64] [--seq 16,64,256]
                      [--threads N] [--iters N] [--max-seconds S] [--flint BIN]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qa_cpu_peers import WARM_UPS, WARM_UP_SECONDS, cpu_model, session  # noqa: E402  (one protocol, one ORT setup)

SHAPES = {"bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
          "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)}
VOCAB = 30522


def measure(run, iters, max_seconds):
    """Flint's Timing.measure: warm-ups, then timed runs; samples in ms."""
    start = time.perf_counter()
    for _ in range(WARM_UPS):
        run()
        if time.perf_counter() - start > WARM_UP_SECONDS:
            break
    times, started = [], time.perf_counter()
    for _ in range(iters):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
        if max_seconds > 0 and time.perf_counter() - started > max_seconds:
            break
    return times


def point(batch, seq, times):
    return dict(batch=batch, seq=seq, p50_ms=float(np.percentile(times, 50)), avg_ms=float(np.mean(times)),
                p95_ms=float(np.percentile(times, 95)), iters=len(times),
                tokens_per_s=batch * seq / float(np.percentile(times, 50)) * 1000)


def build(name, work, attn):
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, max_position_embeddings=512, **SHAPES[name])
    config._attn_implementation = attn
    return BertModel(config).eval()


def export(model, path):
    import torch

    class ByName(torch.nn.Module):  # BertModel.forward's positional order differs between transformers versions
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.randint(0, VOCAB, (2, 16))
    with torch.inference_mode():
        torch.onnx.export(ByName(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), path, dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                        ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]})


def flint_point(args, name, batch, seq, work):
    out = os.path.join(work, f"flint-{name}-b{batch}-s{seq}.json")
    cmd = [args.flint, "bench", "--sweep", "--model", name, "--device", "cpu", "--threads", str(args.threads),
           "--batch", str(batch), "--seq", str(seq), "--iters", str(args.iters), "--max-seconds", str(args.max_seconds),
           "--json", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    return json.load(open(out))


class Progress:
    """done/total and time left on stderr, as flint's ProgressLine: one live line on a terminal, plain lines
    otherwise; time left from the time so far over the work done, each item weighted by its tokens"""

    def __init__(self, weights):
        self.weights, self.done, self.started = weights, 0, time.monotonic()
        self.live = sys.stderr.isatty()

    @staticmethod
    def duration(s):
        s = round(s)
        return f"{s} s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"

    def finish(self, text):
        self.done += 1
        done_w, total_w = sum(self.weights[:self.done]), sum(self.weights)
        left = f", about {self.duration((time.monotonic() - self.started) / done_w * (total_w - done_w))} left" \
            if 0 < done_w < total_w else ""
        line = f"[{self.done}/{len(self.weights)}] {text}{left}"
        sys.stderr.write("\r\x1b[K" + line if self.live else line + "\n")
        sys.stderr.flush()

    def close(self):
        if self.live:
            sys.stderr.write("\n")


def sweep_doc(engine, name, device, points, machine, date, extra=None):
    doc = {"schema": "flint-sweep/1", "engine": engine, "model": name, "device": device, "dtype": "f32", "machine": machine,
           "date": date, "ceilings": {"gemm_gflops": None, "copy_gbps": None}, "points": points}
    doc.update(extra or {})
    return doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="bert-base,minilm-l6")
    ap.add_argument("--batch", default="1,4,16,64")
    ap.add_argument("--seq", default="16,64,256")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=5)
    ap.add_argument("--flint", help="a flint binary: time Flint's points interleaved with the peers'")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in SHAPES]
    if bad:
        raise SystemExit(f"--models: unknown {bad}; choose from {sorted(SHAPES)}")
    batches = sorted(int(b) for b in args.batch.split(","))
    seqs = sorted(int(s) for s in args.seq.split(","))
    import onnxruntime as ort
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="peers-sweep-")
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads"
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    sweeps, checks = [], {}
    rng = np.random.default_rng(42)
    grid = [(s, b) for s in seqs for b in batches]
    engine_count = 2 + (1 if args.flint else 0)
    progress = Progress([s * b for _ in models for s, b in grid for _ in range(engine_count)])
    for name in models:
        model = build(name, work, "sdpa")
        onnx_path = os.path.join(work, f"{name}.onnx")
        export(build(name, work, "eager"), onnx_path)
        sess = session(onnx_path, args.threads)
        engines = ["torch-eager", "ort"] + (["flint"] if args.flint else [])
        points = {e: [] for e in engines}
        flint_meta = None
        for i, (seq, batch) in enumerate(grid):
            ids = rng.integers(0, VOCAB, size=(batch, seq), dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            tids = torch.from_numpy(ids)
            with torch.inference_mode():
                want = model(input_ids=tids, attention_mask=torch.ones_like(tids)).last_hidden_state.numpy()
            checks[f"{name} b{batch} s{seq}"] = float(np.abs(sess.run(None, feed)[0] - want).max())

            def torch_run():
                with torch.inference_mode():
                    model(input_ids=tids, attention_mask=torch.ones_like(tids), token_type_ids=torch.zeros_like(tids))

            order = engines[i % len(engines):] + engines[:i % len(engines)]
            for e in order:
                time.sleep(0.2)  # no thread pool still spinning from the previous block
                if e == "flint":
                    doc = flint_point(args, name, batch, seq, work)
                    flint_meta = flint_meta or doc
                    points[e] += doc["points"]
                    p = doc["points"][0]
                else:
                    run = torch_run if e == "torch-eager" else (lambda: sess.run(None, feed))
                    p = point(batch, seq, measure(run, args.iters, args.max_seconds))
                    points[e].append(p)
                progress.finish(f"{name} b{batch} s{seq} {e}: p50 {p['p50_ms']:.2f} ms ({p['iters']} runs)")
        device = f"cpu ({args.threads} threads)"
        sweeps.append(sweep_doc("torch-eager", name, device, points["torch-eager"], machine, date,
                                {"versions": {"torch": torch.__version__, "transformers": transformers.__version__}}))
        sweeps.append(sweep_doc("ort", name, device, points["ort"], machine, date,
                                {"versions": {"onnxruntime": ort.__version__}}))
        if args.flint:
            sweeps.append(sweep_doc("flint", name, flint_meta["device"], points["flint"], machine, date,
                                    {"ceilings": flint_meta["ceilings"], "dtype": flint_meta["dtype"],
                                     "binary": os.path.realpath(args.flint)}))
        del model, sess
    progress.close()
    load_after = os.getloadavg()
    for s in sweeps:  # the plot's machine line: how busy the machine was, as measured
        s["machine"] += f", load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end"
    doc = {"schema": "flint-sweep-peers/1", "date_utc": date,
           "host": {"cpu": cpu_model(), "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after},
           "settings": {"threads": args.threads, "iters": args.iters, "max_seconds": args.max_seconds, "warm_ups": WARM_UPS,
                        "warm_up_seconds": WARM_UP_SECONDS, "statistic": "p50", "interleaved": "per point, order rotated"},
           "ort_vs_torch_max_abs_diff": checks, "sweeps": sweeps}
    json.dump(doc, open(args.out, "w"), indent=1)
    print(f"wrote {args.out}: {len(sweeps)} sweeps; ORT vs torch max |diff| {max(checks.values()):.1e}", file=sys.stderr)


if __name__ == "__main__":
    main()
