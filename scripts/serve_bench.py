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
    requests, for warm-ups), killed 75 s after that at the latest (hey's own request timeout is 60 s);
    latency and status of every request from its CSV."""
    bound = ["-n", str(max(count, concurrency))] if count else ["-z", f"{max_seconds}s"]
    cmd = [hey, *bound, "-c", str(concurrency), "-m", "POST", "-T", "application/json", "-D", body_file, "-t", "60",
           "-o", "csv", url]
    n = count or 0
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_seconds + 75).stdout
    except subprocess.TimeoutExpired:
        return {"concurrency": concurrency, "requests": n, "ok": 0, "statuses": {"killed after": max_seconds + 75}}
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


async def server_seconds(client, metrics_url):
    """(sum, count) of the encoder's flint_inference_duration_seconds and of the server's own end-to-end
    flint_request_duration_seconds for /v1/embeddings, from /metrics."""
    text = (await client.get(metrics_url)).text
    out = {"inference": [0.0, 0.0], "request": [0.0, 0.0]}
    for line in text.splitlines():
        for key, metric, label in [("inference", "flint_inference_duration_seconds", 'model="minilm"'),
                                   ("request", "flint_request_duration_seconds", 'route="/v1/embeddings"')]:
            if label in line and line.startswith(metric + "_sum"):
                out[key][0] += float(line.split()[-1])
            elif label in line and line.startswith(metric + "_count"):
                out[key][1] += float(line.split()[-1])
    return out


def mean_ms(before, after, key):
    """Mean in ms of what a histogram recorded between two scrapes, and how many it recorded."""
    n = after[key][1] - before[key][1]
    return (round(1000 * (after[key][0] - before[key][0]) / n, 3), int(n)) if n > 0 else (None, 0)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


async def soak(args, texts):
    """Steady mixed load on flint serve for `args.soak` seconds (rate-limited `hey` on short and long
    embeddings, and streaming GPT-2 clients), the server's RSS sampled every 10 s."""
    bodies = {}
    for kind in ["short", "long"]:
        bodies[kind] = os.path.join(args.scratch, f"soak-{kind}.json")
        json.dump({"model": "minilm", "input": texts[kind][0], "encoding_format": "float"}, open(bodies[kind], "w"))
    # hey -q is a rate per worker: 4 x 10 short and 2 x 5 long requests per second at most.
    heys = [subprocess.Popen([args.hey, "-z", f"{args.soak}s", "-c", c, "-q", q, "-m", "POST", "-T", "application/json",
                              "-D", bodies[kind], "-t", "60", "-o", "csv", args.flint + "/v1/embeddings"],
                             stdout=open(os.path.join(args.scratch, f"soak-{kind}.csv"), "w"), stderr=subprocess.DEVNULL)
            for kind, c, q in [("short", "4", "10"), ("long", "2", "5")]]
    samples, start = [], time.perf_counter()
    deadline = start + args.soak
    stream_rows = []

    async def sampler():
        while True:
            samples.append({"t_s": round(time.perf_counter() - start, 1), "rss_kib": rss_kib(args.pid)})
            if time.perf_counter() >= deadline:
                return
            await asyncio.sleep(min(10.0, max(0.0, deadline - time.perf_counter())))

    async def streams(client):
        while time.perf_counter() < deadline - 5:
            stream_rows.append(await stream_level(client, args.flint + "/v1/completions", "gpt2", texts["short"][0], 2,
                                                  args.stream_tokens, 1, 60))

    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as client:
            await asyncio.wait_for(asyncio.gather(sampler(), streams(client)), timeout=args.soak + 180)
        for h in heys:
            h.wait(timeout=90)
    finally:
        for h in heys:
            if h.poll() is None:
                h.kill()
                h.wait()
    embed_rows = []
    for kind in ["short", "long"]:
        statuses, latencies = {}, []
        for row in csv.DictReader(open(os.path.join(args.scratch, f"soak-{kind}.csv"))):
            statuses[row["status-code"]] = statuses.get(row["status-code"], 0) + 1
            if row["status-code"] == "200":
                latencies.append(float(row["response-time"]))
        embed_rows.append({"texts": kind, "requests": sum(statuses.values()), "statuses": statuses, **summary_ms(latencies)})
    stream_statuses = {}
    for r in stream_rows:
        for k, v in r["statuses"].items():
            stream_statuses[k] = stream_statuses.get(k, 0) + v
    rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    return {"soak_seconds": args.soak, "embeddings": embed_rows,
            "streams": {"rounds": len(stream_rows), "statuses": stream_statuses,
                        "completion_tokens": sum(r["completion_tokens"] for r in stream_rows)},
            "rss": {"start_kib": rss[0], "end_kib": rss[-1], "max_kib": max(rss), "min_kib": min(rss),
                    "after_first_minute_max_kib": max(s["rss_kib"] for s in samples if s["t_s"] >= 60) if args.soak > 60 else None},
            "rss_series": samples}


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
    ap.add_argument("--soak", type=int, help="instead of the levels: this many seconds of steady mixed load")
    ap.add_argument("--pid", type=int, help="flint serve's process id (its RSS is sampled during --soak)")
    args = ap.parse_args()
    texts = json.load(open(args.texts))
    if args.soak:
        print(json.dumps(await soak(args, texts), indent=1))
        return
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
                before = await server_seconds(client, args.flint + "/metrics")
                row = {"texts": kind, "server": "flint",
                       **embed_level(args.hey, args.flint + "/v1/embeddings", flint_body, c, args.max_seconds)}
                after = await server_seconds(client, args.flint + "/metrics")
                # The engine's own time per formed batch, and the server's own end-to-end time per request.
                row["engine_mean_ms"], row["batches"] = mean_ms(before, after, "inference")
                row["server_request_mean_ms"], _ = mean_ms(before, after, "request")
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
