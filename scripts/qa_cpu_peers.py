#!/usr/bin/env python3
"""QA on BERT-base at seq 384 on the CPU: Flint's release `flint bench` beside ONNX Runtime, in one run.

The model: BertForQuestionAnswering with BERT-base's shape (768 hidden, 12 layers, 12 heads, 3072 FFN,
vocab 30522), random weights from torch.manual_seed(0), saved as a folder Flint reads
(config.json + model.safetensors) and exported to ONNX (TorchScript exporter, opset 17, dynamic batch
and sequence axes, eager attention so ORT's fusions can match it). Engines:
  flint      `flint bench --model FOLDER --device cpu --seq 384 --batch B` (times the start/end logits)
  ort        ONNX Runtime CPUExecutionProvider, ORT_ENABLE_ALL, on the exported graph
  ort-fused  the same graph after onnxruntime.transformers.optimizer.optimize_model(model_type="bert")
Same threads for all (intra-op threads = --threads, inter-op 1) and Flint's protocol for every engine:
10 warm-ups (stopping early after 5 s), then --iters timed runs (stopping early after --max-seconds);
statistic: p50 (numpy's linear interpolation). Shapes: batch 1 and 8 at seq 384, full-length random ids,
token types 0, attention mask 1. Rounds are interleaved: every round runs each shape on each engine,
the engine order rotated per round, so drift on a shared machine hits all engines alike.
ORT's outputs are checked against torch's (max |diff| of the logits) before timing.

usage: qa_cpu_peers.py --flint BIN --folder DIR --out FILE [--threads N] [--rounds R] [--iters N]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

WARM_UPS, WARM_UP_SECONDS = 10, 5.0  # Flint's Timing.warmUps / warmUpSeconds
SEQ = 384


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def make_model(folder):
    import torch
    from transformers import BertConfig, BertForQuestionAnswering
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512)
    config._attn_implementation = "eager"
    model = BertForQuestionAnswering(config).eval()
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        os.makedirs(folder, exist_ok=True)
        model.save_pretrained(folder, safe_serialization=True)
    return model


def export(model, path):
    import torch
    ids = torch.randint(0, 30522, (2, 16))
    with torch.inference_mode():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), path, dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["start_logits", "end_logits"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                        ["input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits"]})


def session(path, threads):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def p50(samples):
    return float(np.percentile(samples, 50))


def time_ort(sess, feed, iters, max_seconds):
    """Flint's Timing.measure: warm-ups, then timed runs; samples in ms."""
    start = time.perf_counter()
    for _ in range(WARM_UPS):
        sess.run(None, feed)
        if time.perf_counter() - start > WARM_UP_SECONDS:
            break
    times, started = [], time.perf_counter()
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
        if max_seconds > 0 and time.perf_counter() - started > max_seconds:
            break
    return times


def time_flint(args, batch, work):
    out = os.path.join(work, f"flint-b{batch}.json")
    cmd = [args.flint, "bench", "--model", args.folder, "--device", "cpu", "--threads", str(args.threads),
           "--batch", str(batch), "--seq", str(SEQ), "--iters", str(args.iters), "--max-seconds", str(args.max_seconds),
           "--json", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    doc = json.load(open(out))
    row = doc["rows"][0]
    return row, doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flint", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=30)
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    work = tempfile.mkdtemp(prefix="qa-cpu-")
    model = make_model(args.folder)
    onnx_path = os.path.join(work, "qa.onnx")
    export(model, onnx_path)
    from onnxruntime.transformers.optimizer import optimize_model
    fused_path = os.path.join(work, "qa-fused.onnx")
    fused = optimize_model(onnx_path, model_type="bert", num_heads=12, hidden_size=768)
    fusions = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    print("ORT fusions:", fusions, file=sys.stderr)
    fused.save_model_to_file(fused_path)
    sessions = {"ort": session(onnx_path, args.threads), "ort-fused": session(fused_path, args.threads)}

    rng = np.random.default_rng(42)
    feeds, checks = {}, {}
    for b in batches:
        ids = rng.integers(0, 30522, size=(b, SEQ), dtype=np.int64)
        feeds[b] = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        with torch.inference_mode():
            ref = model(input_ids=torch.from_numpy(ids))
        want = np.stack([ref.start_logits.numpy(), ref.end_logits.numpy()])
        for name, s in sessions.items():
            got = np.stack(s.run(None, feeds[b]))
            checks[f"{name} b{b}"] = float(np.abs(got - want).max())
    print("ORT vs torch, max |logit diff|:", checks, file=sys.stderr)
    del model

    engines = ["flint", "ort", "ort-fused"]
    rows, flint_docs = [], {}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        order = engines[r % 3:] + engines[:r % 3]
        for b in batches:
            for e in order:
                time.sleep(0.2)  # no thread pool still spinning from the previous block
                if e == "flint":
                    row, flint_docs[b] = time_flint(args, b, work)
                    rec = dict(p50_ms=row["p50_ms"], avg_ms=row["avg_ms"], p95_ms=row["p95_ms"], n=int(row["iters"]))
                else:
                    t = time_ort(sessions[e], feeds[b], args.iters, args.max_seconds)
                    rec = dict(p50_ms=p50(t), avg_ms=float(np.mean(t)), p95_ms=float(np.percentile(t, 95)), n=len(t),
                               samples_ms=t)
                rows.append(dict(round=r, engine=e, batch=b, seq=SEQ, **rec))
                print(f"round {r} b{b} {e}: p50 {rec['p50_ms']:.1f} ms ({rec['n']} runs)", file=sys.stderr)
    load_after = os.getloadavg()

    summary = []
    for b in batches:
        per = {e: [x["p50_ms"] for x in rows if x["engine"] == e and x["batch"] == b] for e in engines}
        med = {e: float(np.median(v)) for e, v in per.items()}
        best = min(("ort", "ort-fused"), key=lambda e: med[e])
        # Per round: Flint over the best ORT of the same round (neighbours in time).
        per_round = [per["flint"][i] / min(per["ort"][i], per["ort-fused"][i]) for i in range(args.rounds)]
        summary.append(dict(batch=b, seq=SEQ, flint_p50_ms=med["flint"], ort_p50_ms=med["ort"],
                            ort_fused_p50_ms=med["ort-fused"], best_ort=best, flint_over_best_ort=med["flint"] / med[best],
                            flint_over_best_ort_per_round=per_round))
    doc = dict(schema="flint-qa-cpu/1", date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               host=dict(cpu=cpu_model(), cpus=os.cpu_count(), loadavg_before=load_before, loadavg_after=load_after,
                         shared=True),
               settings=dict(threads=args.threads, rounds=args.rounds, iters=args.iters, max_seconds=args.max_seconds,
                             warm_ups=WARM_UPS, warm_up_seconds=WARM_UP_SECONDS, statistic="p50 per run of the protocol; "
                             "summary = median over rounds"),
               versions=dict(torch=torch.__version__, transformers=transformers.__version__, onnxruntime=ort.__version__),
               ort_vs_torch_max_abs_diff=checks, ort_fusions=fusions, summary=summary, rows=rows,
               flint_binary=os.path.realpath(args.flint), flint_output=flint_docs[batches[-1]].get("output", "last_hidden_state"),
               flint=flint_docs[batches[-1]])
    json.dump(doc, open(args.out, "w"), indent=1)
    print(f"\nCPU: {doc['host']['cpu']}, {os.cpu_count()} CPUs (shared machine), threads={args.threads}, fp32, seq {SEQ}")
    print("batch | flint p50 ms | ort p50 ms | ort-fused p50 ms | flint / best ort | per round")
    for s in summary:
        print(f"{s['batch']:5d} | {s['flint_p50_ms']:12.1f} | {s['ort_p50_ms']:10.1f} | {s['ort_fused_p50_ms']:16.1f} | "
              f"{s['flint_over_best_ort']:16.2f} | {', '.join(f'{x:.2f}' for x in s['flint_over_best_ort_per_round'])}")
    md = os.path.splitext(args.out)[0] + ".md"
    with open(md, "w") as f:
        f.write(f"# QA on BERT-base, seq 384, CPU: Flint beside ONNX Runtime ({doc['date_utc']})\n\n"
                f"- CPU: {doc['host']['cpu']}, {os.cpu_count()} CPUs, **shared with other engineers' builds** "
                f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after): numbers are noisy; "
                "compare only within this run.\n"
                f"- fp32, {args.threads} threads for every engine; model: seeded random BertForQuestionAnswering "
                "(BERT-base shape), the same weights in Flint (safetensors folder) and ORT (ONNX export).\n"
                f"- Protocol (Flint's `flint bench`, for every engine): {WARM_UPS} warm-ups (stop after "
                f"{WARM_UP_SECONDS:.0f} s), up to {args.iters} timed runs (stop after {args.max_seconds:.0f} s); p50 per "
                f"block; {args.rounds} interleaved rounds, engine order rotated; the table gives the median over rounds.\n"
                f"- Versions: torch {torch.__version__}, transformers {transformers.__version__}, "
                f"onnxruntime {ort.__version__}; ORT fusions: {fusions}; ORT vs torch max |logit diff|: "
                f"{max(checks.values()):.1e}.\n\n"
                "| batch | seq | Flint p50 ms | ORT p50 ms | ORT fused p50 ms | Flint / best ORT | per round |\n"
                "|---|---|---|---|---|---|---|\n")
        for s in summary:
            f.write(f"| {s['batch']} | {SEQ} | {s['flint_p50_ms']:.1f} | {s['ort_p50_ms']:.1f} | {s['ort_fused_p50_ms']:.1f} | "
                    f"{s['flint_over_best_ort']:.2f} | {', '.join(f'{x:.2f}' for x in s['flint_over_best_ort_per_round'])} |\n")
    print(f"wrote {args.out} and {md}")


if __name__ == "__main__":
    main()
