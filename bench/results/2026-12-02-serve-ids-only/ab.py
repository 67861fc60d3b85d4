# Interleaved A/B of flint serve's per-request overhead at concurrency 1 (loopback, keep-alive).
# (bench/results/2026-12-02-serve-overhead/ab.py plus per-block figures and their medians over the blocks.)
import http.client, json, re, sys, time, statistics
ports = {k: int(v) for k, v in (a.split("=") for a in sys.argv[1].split(","))}
texts = json.load(open(sys.argv[2]))
blocks, per_block = int(sys.argv[3]), int(sys.argv[4])
kinds = sys.argv[5].split(",") if len(sys.argv) > 5 else ["short", "long"]
def metrics(conn):
    conn.request("GET", "/metrics"); body = conn.getresponse().read().decode()
    def get(name, label):
        s = c = 0.0
        for line in body.splitlines():
            if line.startswith(name + "_sum") and label in line: s = float(line.split()[-1])
            if line.startswith(name + "_count") and label in line: c = float(line.split()[-1])
        return s, c
    return get("flint_request_duration_seconds", 'route="/v1/embeddings"'), get("flint_inference_duration_seconds", 'model="minilm"')
conns = {k: http.client.HTTPConnection("127.0.0.1", p) for k, p in ports.items()}
res = {(k, kind): {"client": [], "req": [0.0, 0], "inf": [0.0, 0], "blocks": [], "p50s": []} for k in ports for kind in kinds}
bodies = {kind: json.dumps({"model": "minilm", "input": texts[kind][0], "encoding_format": "float"}) for kind in kinds}
for kind in kinds:  # warm-up
    for k, c in conns.items():
        for _ in range(20):
            c.request("POST", "/v1/embeddings", bodies[kind], {"content-type": "application/json"}); c.getresponse().read()
for b in range(blocks):
    for kind in kinds:
        order = list(conns) if b % 2 == 0 else list(reversed(list(conns)))
        for k in order:
            c = conns[k]
            (rs0, rc0), (is0, ic0) = metrics(c)
            for _ in range(per_block):
                t = time.perf_counter()
                c.request("POST", "/v1/embeddings", bodies[kind], {"content-type": "application/json"})
                r = c.getresponse(); r.read(); assert r.status == 200
                res[(k, kind)]["client"].append(time.perf_counter() - t)
            (rs1, rc1), (is1, ic1) = metrics(c)
            d = res[(k, kind)]
            d["req"][0] += rs1 - rs0; d["req"][1] += rc1 - rc0
            d["inf"][0] += is1 - is0; d["inf"][1] += ic1 - ic0
            d["blocks"].append(((rs1 - rs0) / max(rc1 - rc0, 1) - (is1 - is0) / max(ic1 - ic0, 1)) * 1e3)
            d["p50s"].append(statistics.median(d["client"][-per_block:]) * 1e3)
for (k, kind), d in res.items():
    cl = d["client"]
    req_mean = d["req"][0] / max(d["req"][1], 1) * 1e3
    inf_mean = d["inf"][0] / max(d["inf"][1], 1) * 1e3
    print(f"{k:6s} {kind:5s} n={len(cl)} client p50 {statistics.median(cl)*1e3:.3f} mean {statistics.mean(cl)*1e3:.3f} ms | "
          f"server req mean {req_mean:.3f} engine mean {inf_mean:.3f} -> inside overhead {req_mean - inf_mean:.3f} ms; "
          f"client - engine {statistics.mean(cl)*1e3 - inf_mean:.3f} ms")
print("per-block inside overhead (ms), median over the blocks:")
for (k, kind), d in res.items():
    print(f"{k:6s} {kind:5s} median {statistics.median(d['blocks']):.3f} ms (client p50 median {statistics.median(d['p50s']):.3f} ms); "
          + " ".join(f"{x:.3f}" for x in d["blocks"]))
for k, c in conns.items():
    c.request("GET", "/debug/trace"); r = c.getresponse(); body = r.read().decode()
    if r.status == 200: print(f"--- trace {k} (all kinds together)\n{body}")
