#!/usr/bin/env python3
"""Hugging Face `tokenizers` peer for Flint's tokenizer benchmark.

Encodes every text of a JSONL corpus (lines {"text": ...}) with add_special_tokens=True,
no padding, no truncation, and reports texts/s, MB/s (UTF-8 bytes of the corpus) and
tokens/s, best of N runs after one warm-up:
  single_encode_batch    encode_batch, TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1
  single_encode_loop     encode() per text, same single-threaded process
  parallel_encode_batch  encode_batch with HF's default (rayon) threads
Each mode runs in its own subprocess, since rayon's thread pool is process-global.

usage: bench_tokenizers_hf.py (--tokenizer tokenizer.json | --bert-vocab vocab.txt | --gpt2-vocab DIR)
                              --corpus FILE [--runs 3] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def load_tokenizer(a):
    from tokenizers import AddedToken, BertWordPieceTokenizer, ByteLevelBPETokenizer, Tokenizer
    if a.tokenizer:
        tok = Tokenizer.from_file(a.tokenizer)
    elif a.bert_vocab:
        cfg_path = os.path.join(os.path.dirname(a.bert_vocab), "tokenizer_config.json")
        cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
        tok = BertWordPieceTokenizer(a.bert_vocab, lowercase=cfg.get("do_lower_case", True),
                                     strip_accents=cfg.get("strip_accents"),
                                     handle_chinese_chars=cfg.get("tokenize_chinese_chars", True))
    else:
        pick = lambda *names: next(p for p in (os.path.join(a.gpt2_vocab, n) for n in names) if os.path.exists(p))
        tok = ByteLevelBPETokenizer(pick("vocab.json", "encoder.json"), pick("merges.txt", "vocab.bpe"))
        tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
    tok.no_padding()
    tok.no_truncation()
    return tok


def load_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def best_of(runs, fn):
    fn()  # warm-up
    best, tokens = float("inf"), 0
    for _ in range(runs):
        t0 = time.perf_counter()
        tokens = fn()
        best = min(best, time.perf_counter() - t0)
    return best, tokens


def child(a):
    """Runs in a subprocess whose environment already fixes the thread count."""
    import tokenizers
    tok, texts = load_tokenizer(a), load_texts(a.corpus)
    batch = lambda: sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=True))
    loop = lambda: sum(len(tok.encode(t, add_special_tokens=True).ids) for t in texts)
    modes = {"single": [("single_encode_batch", batch), ("single_encode_loop", loop)],
             "parallel": [("parallel_encode_batch", batch)]}[a.child]
    out = {"hf_tokenizers": tokenizers.__version__}
    for name, fn in modes:
        out[name] = best_of(a.runs, fn)
    print(json.dumps(out))


def run_child(mode, argv):
    env = dict(os.environ)
    for k in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS", "RAYON_RS_NUM_CPUS"):
        env.pop(k, None)
    if mode == "single":
        env.update(TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS="1")
    r = subprocess.run([sys.executable, __file__, *argv, "--child", mode], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench child ({mode}) failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tokenizer", help="HF tokenizer.json")
    src.add_argument("--bert-vocab", help="WordPiece vocab.txt (tokenizer_config.json next to it is honoured)")
    src.add_argument("--gpt2-vocab", help="folder with vocab.json+merges.txt or encoder.json+vocab.bpe")
    ap.add_argument("--corpus", required=True, help='JSONL, one {"text": ...} per line')
    ap.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (best is kept)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--child", choices=("single", "parallel"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)

    argv = [x for x in sys.argv[1:] if x != "--json"]
    texts = load_texts(a.corpus)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    single, parallel = run_child("single", argv), run_child("parallel", argv)
    res = {"hf_tokenizers": single["hf_tokenizers"], "texts": len(texts), "bytes": nbytes}
    for name, (secs, tokens) in [*((k, v) for k, v in single.items() if k != "hf_tokenizers"),
                                 ("parallel_encode_batch", parallel["parallel_encode_batch"])]:
        res[name] = {"seconds": secs, "texts_per_s": len(texts) / secs,
                     "mb_per_s": nbytes / 1e6 / secs, "tokens": tokens, "tokens_per_s": tokens / secs}
    res["threads"] = os.cpu_count()
    if a.json:
        print(json.dumps(res))
        return
    print(f"HF tokenizers {res['hf_tokenizers']}: {len(texts)} texts, {nbytes / 1e6:.2f} MB, "
          f"{res['threads']} CPUs")
    for name in ("single_encode_batch", "single_encode_loop", "parallel_encode_batch"):
        r = res[name]
        print(f"  {name:22s} {r['seconds'] * 1e3:9.1f} ms  {r['texts_per_s']:10.0f} texts/s  "
              f"{r['mb_per_s']:7.2f} MB/s  {r['tokens_per_s']:11.0f} tokens/s  ({r['tokens']} tokens)")


if __name__ == "__main__":
    main()
