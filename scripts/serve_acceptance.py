"""Drives a running `flint serve` through the official clients (see scripts/serve-acceptance), and
the task routes (/predict, /rerank, /v1/answer) over plain HTTP.

Every check raises on failure; the last one sends SIGTERM to the server during a stream.
"""
import argparse
import json
import math
import os
import signal
import time
import urllib.error
import urllib.request

import numpy as np
import openai
import tritonclient.http as triton

TEXTS = ["Flint serves embeddings over HTTP.", "A second, longer sentence to embed in the same request."]


def check(condition, what):
    if not condition:
        raise SystemExit(f"serve-acceptance: FAILED: {what}")
    print(f"ok: {what}")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def tasks(url):
    """TEI's /predict and /rerank and /v1/answer over plain HTTP, against the HF pipelines' outputs
    stored with the tiny fixtures (Tests/Fixtures/tasks and qa/expected.json)."""
    with open("Tests/Fixtures/tasks/expected.json") as f:
        expected = json.load(f)
    with open("Tests/Fixtures/qa/expected.json") as f:
        qa = json.load(f)

    def close(mine, theirs, keys):
        return len(mine) == len(theirs) and all(
            all(m[k] == t[k] for k in keys) and abs(m["score"] - t["score"]) <= 1e-4 for m, t in zip(mine, theirs))

    cases = [c for c in expected["classify"] if c["model"] == "tiny-seqcls" and c["top_k"] == 10 and c["pair"] is None]
    for c in cases[:3]:
        status, got = post(url + "/predict", {"model": "cls", "inputs": c["text"]})
        check(status == 200 and close(got, c["result"], ["label"]), f"/predict {c['text']!r}: every label, best first, as HF")
    status, got = post(url + "/predict", {"inputs": [[c["text"]] for c in cases[:3]]})
    check(status == 200 and all(close(g, c["result"], ["label"]) for g, c in zip(got, cases)), "/predict: a batch, one list per input")
    status, raw = post(url + "/predict", {"inputs": cases[0]["text"], "raw_scores": True})
    logits = np.array([p["score"] for p in raw])
    soft = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    check(status == 200 and abs(soft[0] - cases[0]["result"][0]["score"]) <= 1e-4, "/predict raw_scores: the logits")

    # The server runs with --max-batch-requests 4, TEI's max_client_batch_size: 4 texts at most.
    rerank = expected["rerank"][0]
    texts = rerank["texts"][:4]
    status, got = post(url + "/rerank", {"query": rerank["query"], "texts": texts, "return_text": True})
    want = [r for r in rerank["result"] if r["index"] < 4]
    check(status == 200 and close(got, want, ["index"]), "/rerank: best first, as sentence-transformers")
    check(all(g["text"] == texts[g["index"]] for g in got), "/rerank: return_text")
    status, err = post(url + "/rerank", {"query": rerank["query"], "texts": rerank["texts"]})
    check(status == 413 and "max" in err["error"], f"/rerank: more texts than max_client_batch_size is a 413 ({status})")
    status, err = post(url + "/rerank", {"model": "cls", "query": "q", "texts": ["x"]})
    check(status == 404 and "error" in err, f"/rerank on a 4-label classifier is a 404 ({status})")

    for case in [c for c in qa["cases"] if c["model"] == "qa/tiny-bert-qa"][:3]:
        for item in case["items"][:4]:
            status, got = post(url + "/v1/answer", {"question": item["question"], "context": item["context"], **case["options"]})
            answers = got if isinstance(got, list) else [got]
            check(status == 200 and close(answers, item["answers"], ["answer", "start", "end"]),
                  f"/v1/answer {item['question']!r} {case['options']}: as the question-answering pipeline")
    status, err = post(url + "/v1/answer", {"question": "q", "context": "c", "top_k": 0})
    check(status == 400 and err["error"]["param"] == "top_k", "/v1/answer: a bad top_k is a 400 naming it")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.url + "/v1", api_key="unused", timeout=60, max_retries=0)

    check(get(args.url + "/health")[0] == 200, "GET /health is 200")
    check(get(args.url + "/v2/health/ready")[0] == 200, "GET /v2/health/ready is 200")
    models = [m.id for m in client.models.list().data]
    check(models == ["minilm", "tiny", "gpt2", "cls", "rank", "qa"], f"/v1/models lists the served models ({models})")
    tasks(args.url)

    # Embeddings: the client's default (base64) and float give the same numbers.
    default = client.embeddings.create(model="minilm", input=TEXTS)
    floats = client.embeddings.create(model="minilm", input=TEXTS, encoding_format="float")
    check(len(default.data) == 2 and len(default.data[0].embedding) == 384, "embeddings: 2 x 384 (base64 default)")
    diff = max(abs(a - b) for d, f in zip(default.data, floats.data) for a, b in zip(d.embedding, f.embedding))
    # JSON floats are the shortest decimals that round to the same f32: equal after rounding to f32.
    same = np.array_equal(np.array([d.embedding for d in default.data], dtype=np.float32),
                          np.array([f.embedding for f in floats.data], dtype=np.float32))
    check(same and diff < 1e-6, f"embeddings: base64 equals float as f32 (max diff as doubles {diff})")
    norm = math.sqrt(sum(x * x for x in floats.data[0].embedding))
    check(abs(norm - 1) < 1e-4, f"embeddings: MiniLM's are unit length ({norm})")
    check(default.usage.prompt_tokens > 0, f"embeddings: usage.prompt_tokens {default.usage.prompt_tokens}")
    short = client.embeddings.create(model="minilm", input=TEXTS[0], dimensions=64, encoding_format="float")
    check(len(short.data[0].embedding) == 64, "embeddings: dimensions=64")

    # Completions, whole and streamed: the same greedy text.
    whole = client.completions.create(model="tiny", prompt="in the is on", max_tokens=20, temperature=0,
                                      extra_body={"ignore_eos": True})
    check(whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 20, "completions: 20 tokens, length")
    chunks = list(client.completions.create(model="tiny", prompt="in the is on", max_tokens=20, temperature=0, stream=True,
                                            stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    check(streamed == whole.choices[0].text, "completions: streamed text equals the whole text")
    check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 20, "completions: usage chunk last")
    seeded = [client.completions.create(model="tiny", prompt="in the", max_tokens=16, temperature=0.9, top_p=0.95, seed=42)
              .choices[0].text for _ in range(2)]
    check(seeded[0] == seeded[1], "completions: same seed, same text")
    # logprobs (OpenAI's legacy layout) and the presence / frequency penalties.
    scored = client.completions.create(model="tiny", prompt="in the is on", max_tokens=20, temperature=0, logprobs=3,
                                       presence_penalty=2, extra_body={"ignore_eos": True}).choices[0]
    lp = scored.logprobs
    check(lp is not None and [len(lp.tokens), len(lp.token_logprobs), len(lp.top_logprobs), len(lp.text_offset)] == [20] * 4,
          "completions: logprobs=3 gives tokens, token_logprobs, top_logprobs, text_offset for each of 20 tokens")
    check(all(v <= 0 for v in lp.token_logprobs) and all(1 <= len(t) <= 4 for t in lp.top_logprobs),
          "completions: logprobs are <= 0, top_logprobs hold 3 (+ the sampled token)")
    check(all(tok in top for tok, top in zip(lp.tokens, lp.top_logprobs)), "completions: the sampled token is in its top_logprobs")
    check(all(lp.text_offset[i + 1] - lp.text_offset[i] == len(lp.tokens[i]) for i in range(19)), "completions: text_offset")
    probability = sum(math.exp(v) for v in lp.top_logprobs[0].values())
    check(0 < probability <= 1 + 1e-5, f"completions: top probabilities sum to at most 1 ({probability})")
    check(scored.text != whole.choices[0].text, "completions: presence_penalty=2 changes the tiny model's greedy text")
    repeats = client.completions.create(model="tiny", prompt="in the is on", max_tokens=20, temperature=0, frequency_penalty=-2,
                                        extra_body={"ignore_eos": True}).choices[0].text
    check(repeats != scored.text, "completions: frequency_penalty=-2 gives another text")
    parts = list(client.completions.create(model="tiny", prompt="in the", max_tokens=12, temperature=0.9, seed=3, logprobs=2,
                                           stream=True, frequency_penalty=0.5))
    whole_lp = client.completions.create(model="tiny", prompt="in the", max_tokens=12, temperature=0.9, seed=3, logprobs=2,
                                         frequency_penalty=0.5).choices[0].logprobs
    streamed_tokens = [t for p in parts for t in (p.choices[0].logprobs.tokens if p.choices[0].logprobs else [])]
    streamed_values = [v for p in parts for v in (p.choices[0].logprobs.token_logprobs if p.choices[0].logprobs else [])]
    check(streamed_tokens == whole_lp.tokens and streamed_values == whole_lp.token_logprobs,
          "completions: streamed chunks carry the same logprobs as the whole response")
    # echo + logprobs (and max_tokens 0: the prompt alone, scored): the prompt's tokens first, the first one null.
    echoed = client.completions.create(model="tiny", prompt="in the is on", max_tokens=0, echo=True, logprobs=2).choices[0]
    elp = echoed.logprobs
    n_prompt = len(elp.tokens) if elp else 0
    check(echoed.text == "in the is on" and n_prompt > 1 and "".join(elp.tokens) == echoed.text,
          f"completions: echo with max_tokens=0 returns the prompt and its {n_prompt} tokens")
    check(elp.token_logprobs[0] is None and elp.top_logprobs[0] is None, "completions: the first prompt token has null logprobs")
    check(all(v <= 0 for v in elp.token_logprobs[1:]) and all(1 <= len(t) <= 3 for t in elp.top_logprobs[1:])
          and elp.text_offset[0] == 0, "completions: each later prompt token has its logprob and top 2 (+ itself)")
    both = client.completions.create(model="tiny", prompt="in the is on", max_tokens=5, echo=True, logprobs=2, temperature=0,
                                     extra_body={"ignore_eos": True}).choices[0]
    check(len(both.logprobs.tokens) == n_prompt + 5 and both.logprobs.token_logprobs[:n_prompt] == elp.token_logprobs
          and both.logprobs.text_offset[n_prompt] == len("in the is on"),
          "completions: echo + logprobs: the prompt's entries, then the 5 generated tokens' from the end of the prompt")
    for kwargs, field in [({"presence_penalty": 2.5}, "presence_penalty"), ({"frequency_penalty": -3}, "frequency_penalty"),
                          ({"logprobs": 6}, "logprobs")]:
        try:
            client.completions.create(model="tiny", prompt="in", **kwargs)
            check(False, f"completions: {kwargs} is refused")
        except openai.BadRequestError as e:
            check(field in str(e), f"completions: {kwargs} is a 400 naming {field}")
    try:
        client.embeddings.create(model="nope", input="x")
        check(False, "unknown model is refused")
    except openai.NotFoundError:
        check(True, "unknown model is a 404")

    # KServe v2 through tritonclient (JSON tensors, then binary ones).
    tc = triton.InferenceServerClient(url=args.url.removeprefix("http://"), network_timeout=60)
    check(tc.is_server_live() and tc.is_server_ready(), "triton: server live and ready")
    check(tc.is_model_ready("minilm"), "triton: model ready")
    meta = tc.get_model_metadata("minilm")
    check(meta["outputs"][0]["name"] == "EMBEDDING", "triton: metadata names EMBEDDING")
    text = triton.InferInput("TEXT", [2], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_), binary_data=False)
    result = tc.infer("minilm", [text], outputs=[triton.InferRequestedOutput("EMBEDDING", binary_data=False)])
    emb = result.as_numpy("EMBEDDING")
    check(emb.shape == (2, 384), f"triton: EMBEDDING shape {emb.shape}")
    diff = float(np.abs(emb - np.array([d.embedding for d in floats.data], dtype=np.float32)).max())
    check(diff < 1e-5, f"triton: equals /v1/embeddings (max diff {diff})")
    # The binary tensor data extension: BYTES in and FP32 out as raw bytes after the JSON header;
    # then no outputs named, which tritonclient turns into binary_data_output.
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_), binary_data=True)
    for outputs in [[triton.InferRequestedOutput("EMBEDDING", binary_data=True)], None]:
        binary = tc.infer("minilm", [text], outputs=outputs).as_numpy("EMBEDDING")
        what = "binary_data_output" if outputs is None else "binary_data=True"
        check(binary is not None and binary.shape == (2, 384), f"triton {what}: EMBEDDING shape {None if binary is None else binary.shape}")
        diff = float(np.abs(binary - emb).max())
        check(diff < 1e-5, f"triton {what}: equals the JSON tensors (max diff {diff})")

    # A client that leaves mid-stream cancels its sequence: the KV slot frees long before its 200 tokens.
    def metric(series):
        text = get(args.url + "/metrics")[1].decode()
        line = next((l for l in text.splitlines() if l.startswith(series + " ")), None)
        return float(line.split()[-1]) if line else 0.0

    body = json.dumps({"model": "gpt2", "prompt": "Flint", "max_tokens": 200, "temperature": 0, "ignore_eos": True,
                       "stream": True}).encode()
    request = urllib.request.Request(args.url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    stream = urllib.request.urlopen(request, timeout=120)
    check(stream.readline().startswith(b"data: {"), "disconnect: the stream started")
    check(metric('flint_kv_slots_in_use{model="gpt2"}') == 1, "disconnect: one KV slot in use while streaming")
    stream.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and metric('flint_kv_slots_in_use{model="gpt2"}') != 0:
        time.sleep(0.05)
    check(metric('flint_kv_slots_in_use{model="gpt2"}') == 0, "disconnect: the slot is free again")
    generated = metric('flint_generated_tokens_total{model="gpt2"}')
    check(generated < 200, f"disconnect: the sequence stopped early ({generated:.0f} of 200 tokens)")

    # SIGTERM during a stream: readiness turns 503, the stream still ends with [DONE].
    body = json.dumps({"model": "gpt2", "prompt": "Flint", "max_tokens": 48, "temperature": 0, "ignore_eos": True,
                       "stream": True}).encode()
    request = urllib.request.Request(args.url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as stream:
        first = stream.readline()
        check(first.startswith(b"data: {"), "drain: the stream started")
        os.kill(args.pid, signal.SIGTERM)
        time.sleep(0.2)
        status, _ = get(args.url + "/v2/health/ready")
        check(status == 503, f"drain: readiness is 503 after SIGTERM ({status})")
        rest = stream.read().decode()
    events = [e for e in rest.split("\n\n") if e]
    check(events[-1] == "data: [DONE]", "drain: the stream still ends with [DONE]")
    finals = [json.loads(e[6:]) for e in events[:-1] if e.startswith("data: {")]
    check(finals[-1]["choices"][0]["finish_reason"] == "length", "drain: the stream ran to its max_tokens")


if __name__ == "__main__":
    main()
