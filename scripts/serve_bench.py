"""Load generator of scripts/serve-bench: embeddings from `hey` (Debian) against flint serve and
infinity-emb, interleaved level by level, and streamed GPT-2 completions (asyncio + httpx) against
flint serve, which report time to first token and inter-token gaps.

Every level is bounded in requests and in seconds. Prints one JSON document (the results).
"""
import argparse
import asyncio
import csv
import io
import json
import os
import subprocess
import statistics
import sys
import time

import httpx


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary_ms(values):
    return {"p50_ms": round(1000 * percentile(values, 50), 3) if values else None,
            "p99_ms": round(1000 * percentile(values, 99), 3) if values else None,
            "mean_ms": round(1000 * statistics.fmean(values), 3) if values else None}


def embed_level(hey, url, body_file, concurrency, max_seconds, count=None):
    """`hey` POSTs the body in `body_file` from `concurrency` workers for `max_seconds` (or `count`
    requests, for warm-ups), killed 30 s after that at the latest; latency and status of every
    request from its CSV."""
    bound = ["-n", str(max(count, concurrency))] if count else ["-z", f"{max_seconds}s"]
    cmd = [hey, *bound, "-c", str(concurrency), "-m", "POST", "-T", "application/json", "-D", body_file, "-t", "60",
           "-o", "csv", url]
    n = count or 0
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_seconds + 30).stdout
    except subprocess.TimeoutExpired:
        return {"concurrency": concurrency, "requests": n, "ok": 0, "statuses": {"killed after": max_seconds + 30}}
    wall = time.perf_counter() - start
    latencies, statuses, last = [], {}, 0.0
    for row in csv.DictReader(io.StringIO(out)):
        code = row["status-code"]
        statuses[code] = statuses.get(code, 0) + 1
        if code == "200":
            latencies.append(float(row["response-time"]))
        last = max(last, float(row["offset"]) + float(row["response-time"]))
    seconds = last or wall
    return {"concurrency": concurrency, "requests": sum(statuses.values()), "ok": len(latencies), "statuses": statuses,
            "seconds": round(seconds, 3), "requests_per_s": round(len(latencies) / seconds, 2), **summary_ms(latencies)}


async def stream_level(client, url, model, prompt, concurrency, max_tokens, requests_per_client, max_seconds):
    """Each of `concurrency` clients streams `requests_per_client` completions (bounded in time)."""
    ttft, gaps, tokens, statuses = [], [], 0, {}
    deadline = time.perf_counter() + max_seconds

    async def one():
        nonlocal tokens
        body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        last = None
        async with client.stream("POST", url, json=body) as r:
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code != 200:
                await r.aread()
                return
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                doc = json.loads(line[6:])
                if doc.get("usage"):
                    tokens += doc["usage"]["completion_tokens"]
                    continue
                if not doc["choices"] or not doc["choices"][0]["text"]:
                    continue
                now = time.perf_counter()
                if last is None:
                    ttft.append(now - t0)
                else:
                    gaps.append(now - last)
                last = now

    async def client_loop():
        for _ in range(requests_per_client):
            if time.perf_counter() >= deadline:
                return
            await one()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(concurrency))), timeout=max_seconds + 120)
    wall = time.perf_counter() - start
    return {"clients": concurrency, "statuses": statuses, "seconds": round(wall, 3), "completion_tokens": tokens,
            "tokens_per_s": round(tokens / wall, 2), "ttft": summary_ms(ttft), "inter_token": summary_ms(gaps)}


async def inference_seconds(client, metrics_url):
    """(sum, count) of flint_inference_duration_seconds for the encoder, from /metrics."""
    text = (await client.get(metrics_url)).text
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("flint_inference_duration_seconds_sum") and 'model="minilm"' in line:
            total += float(line.split()[-1])
        elif line.startswith("flint_inference_duration_seconds_count") and 'model="minilm"' in line:
            count += float(line.split()[-1])
    return total, count


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flint", required=True, help="flint serve base URL")
    ap.add_argument("--infinity", help="infinity-emb base URL (omit to skip)")
    ap.add_argument("--texts", required=True, help="JSON file {short: [...], long: [...]}")
    ap.add_argument("--hey", default="hey")
    ap.add_argument("--scratch", required=True, help="folder for request bodies")
    ap.add_argument("--levels", default="1,8,32,128")
    ap.add_argument("--stream-levels", default="1,8,32")
    ap.add_argument("--max-seconds", type=int, default=30, help="seconds of load per embedding level")
    ap.add_argument("--stream-tokens", type=int, default=64)
    ap.add_argument("--stream-seconds", type=float, default=90)
    args = ap.parse_args()
    texts = json.load(open(args.texts))
    results = {"embeddings": [], "streams": [], "overhead": None}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        for kind in ["short", "long"]:
            # One text per request, the same text throughout (as in the offline comparison).
            flint_body = os.path.join(args.scratch, f"flint-{kind}.json")
            inf_body = os.path.join(args.scratch, f"infinity-{kind}.json")
            json.dump({"model": "minilm", "input": texts[kind][0], "encoding_format": "float"}, open(flint_body, "w"))
            json.dump({"model": "minilm", "input": [texts[kind][0]]}, open(inf_body, "w"))
            for c in [int(x) for x in args.levels.split(",")]:
                # Warm-up, then flint and infinity-emb in turn at the same level (the machine is shared).
                embed_level(args.hey, args.flint + "/v1/embeddings", flint_body, c, 60, count=c)
                before = await inference_seconds(client, args.flint + "/metrics")
                row = {"texts": kind, "server": "flint",
                       **embed_level(args.hey, args.flint + "/v1/embeddings", flint_body, c, args.max_seconds)}
                after = await inference_seconds(client, args.flint + "/metrics")
                if after[1] > before[1]:
                    row["engine_mean_ms"] = round(1000 * (after[0] - before[0]) / (after[1] - before[1]), 3)
                    row["batches"] = int(after[1] - before[1])
                results["embeddings"].append(row)
                print(json.dumps(row), file=sys.stderr)
                if args.infinity:
                    embed_level(args.hey, args.infinity + "/embeddings", inf_body, c, 60, count=c)
                    row = {"texts": kind, "server": "infinity-emb",
                           **embed_level(args.hey, args.infinity + "/embeddings", inf_body, c, args.max_seconds)}
                    results["embeddings"].append(row)
                    print(json.dumps(row), file=sys.stderr)
        for c in [int(x) for x in args.stream_levels.split(",")]:
            row = await stream_level(client, args.flint + "/v1/completions", "gpt2", texts["short"][0], c, args.stream_tokens,
                                     2 if c < 32 else 1, args.stream_seconds)
            results["streams"].append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
