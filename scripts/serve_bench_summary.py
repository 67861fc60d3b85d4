"""scripts/serve-bench's report: merges the load results, the offline numbers and the versions into
serve-bench.json, and writes summary.md beside it (tables, then the issue's goals, met or not).

usage: serve_bench_summary.py LOAD_JSON OFFLINE_JSON_TEXT VERSIONS_JSON_TEXT OUTDIR
       serve_bench_summary.py --from-json SERVE_BENCH_JSON OUTDIR   (re-renders summary.md)
"""
import json
import os
import platform
import sys


def load_average():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine():
    """The CPU and the 1-minute load average seen when scripts/serve-bench started (LOADAVG_START) and now."""
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    start, end = os.environ.get("LOADAVG_START"), load_average()
    load = f", load average {float(start):.1f} at start, {end:.1f} at end" if start and end is not None else ""
    return f"{platform.machine()}, {model}, {os.cpu_count()} cores{load}"


def row(doc, texts, server, concurrency):
    for r in doc["embeddings"]:
        if r["texts"] == texts and r["server"] == server and r["concurrency"] == concurrency:
            return r
    return None


def goals(doc):
    """(goal, measured, met) rows; met is None when the run lacks the data."""
    out = []
    off = doc["offline"]
    for texts in ["short", "long"]:
        r = row(doc, texts, "flint", 1)
        if r and r.get("mean_ms") is not None and r.get("engine_mean_ms") is not None:
            # The engine's time is only known per batch as a histogram sum: compare means with means
            # (at c=1 every batch is one request). The client's p50 is no match for the engine's mean.
            added = r["mean_ms"] - r["engine_mean_ms"]
            inside = (r["server_request_mean_ms"] - r["engine_mean_ms"]) if r.get("server_request_mean_ms") else None
            detail = (f"client mean {r['mean_ms']:.3f} ms - engine mean {r['engine_mean_ms']:.3f} ms = {added:.3f} ms"
                      + (f"; inside the server: request mean - engine mean = {inside:.3f} ms" if inside is not None else ""))
            out.append((f"c=1 {texts}: server adds <= 0.3 ms over the engine (means)", detail, added <= 0.3))
    for texts in ["short", "long"]:
        r, i = row(doc, texts, "flint", 32), row(doc, texts, "infinity-emb", 32)
        if r and off.get(texts):
            share = r["requests_per_s"] / off[texts]["texts_per_s"]
            out.append((f"c=32 {texts}: >= 85% of offline `flint embed --jsonl`",
                        f"{r['requests_per_s']} req/s vs {off[texts]['texts_per_s']} texts/s offline = {100 * share:.1f}%", share >= 0.85))
        if r and i and i.get("requests_per_s"):
            ratio = r["requests_per_s"] / i["requests_per_s"]
            lower = r["p99_ms"] is not None and i["p99_ms"] is not None and r["p99_ms"] < i["p99_ms"]
            out.append((f"c=32 {texts}: >= 2x infinity-emb's throughput at a lower p99",
                        f"{ratio:.2f}x ({r['requests_per_s']} vs {i['requests_per_s']} req/s); p99 {r['p99_ms']} vs {i['p99_ms']} ms",
                        ratio >= 2 and lower))
    streams = {s["clients"]: s for s in doc["streams"]}
    if 1 in streams and 32 in streams and streams[1]["tokens_per_s"]:
        ratio = streams[32]["tokens_per_s"] / streams[1]["tokens_per_s"]
        out.append(("GPT-2: 32 streams >= 6x single-stream tokens/s",
                    f"{streams[32]['tokens_per_s']} vs {streams[1]['tokens_per_s']} tokens/s = {ratio:.2f}x", ratio >= 6))
    flint_statuses = {}
    for r in [r for r in doc["embeddings"] if r["server"] == "flint"] + doc["streams"]:
        for k, v in r["statuses"].items():
            flint_statuses[k] = flint_statuses.get(k, 0) + v
    five = sum(v for k, v in flint_statuses.items() if k.startswith("5"))
    out.append(("no 5xx under any load (flint)", f"statuses over the run: {flint_statuses}", five == 0))
    # --max-queue is 512 and at most 128 clients are ever waiting, so the queue never fills: any 429 is wrong.
    too_many = flint_statuses.get("429", 0)
    out.append(("429 only when the queue is full (queue 512 > 128 clients: expect none)", f"{too_many} x 429", too_many == 0))
    return out


def main():
    if sys.argv[1] == "--from-json":  # re-render a run's summary.md from its serve-bench.json
        doc, outdir = json.load(open(sys.argv[2])), sys.argv[3]
        offline, versions = doc["offline"], doc["versions"]
    else:
        load, offline, versions, outdir = json.load(open(sys.argv[1])), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
        doc = {"machine": machine(), "versions": versions, "offline": offline, **load}
    doc["goals"] = [{"goal": g, "measured": m, "met": met} for g, m, met in goals(doc)]
    json.dump(doc, open(os.path.join(outdir, "serve-bench.json"), "w"), indent=1)
    v = versions
    lines = ["# flint serve under load", "",
             f"Machine: {doc['machine']}.", "",
             f"flint {v['flint_commit']} (release build, CPU, f32), {v['swift']}; infinity-emb {v['infinity_emb']} "
             f"(torch {v['torch']}, CPU) on the same MiniLM folder; load from hey {v['hey']} (embeddings) and httpx (streams). "
             "Both servers ran at once; at each level flint then infinity-emb (each after a warm-up of `c` requests), "
             "so both saw the same machine state. One text per request.", "",
             "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    for g in doc["goals"]:
        lines.append(f"| {g['goal']} | {g['measured']} | {'met' if g['met'] else 'NOT met'} |")
    lines += ["", "## Embeddings (`/v1/embeddings` for flint, `/embeddings` for infinity-emb)", "",
              "| texts | server | concurrency | req/s | p50 ms | p99 ms | statuses | engine ms/batch | batches |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["embeddings"]:
        lines.append(f"| {r['texts']} | {r['server']} | {r['concurrency']} | {r.get('requests_per_s')} | {r.get('p50_ms')} | "
                     f"{r.get('p99_ms')} | {r.get('statuses')} | {r.get('engine_mean_ms', '')} | {r.get('batches', '')} |")
    lines += ["", "Offline `flint embed --jsonl` on the same texts ((N - 1) / (t(N) - t(1)), best of 2): "
              + ", ".join(f"{k} {offline[k]['texts_per_s']} texts/s (N = {offline[k]['texts']})" for k in ["short", "long"]) + ".",
              "`flint bench` at batch 1: " + ", ".join(f"seq {r['seq']:.0f}: p50 {r['p50_ms']:.3f} ms" for r in offline["bench"]["rows"])
              + ".", "",
              "## GPT-2 streamed completions (built-in gpt2: 124M, random weights; 32 tokens each, ignore_eos, greedy)", "",
              "| clients | tokens/s | TTFT p50 / p99 ms | inter-token p50 / p99 ms | statuses |", "|---|---|---|---|---|"]
    for r in doc["streams"]:
        lines.append(f"| {r['clients']} | {r['tokens_per_s']} | {r['ttft']['p50_ms']} / {r['ttft']['p99_ms']} | "
                     f"{r['inter_token']['p50_ms']} / {r['inter_token']['p99_ms']} | {r['statuses']} |")
    open(os.path.join(outdir, "summary.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
