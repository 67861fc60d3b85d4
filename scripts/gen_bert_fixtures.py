#!/usr/bin/env python3
"""gen_bert_fixtures.py: reference outputs for Flint's BERT loader/encoder tests, from HF transformers.

Writes into Tests/Fixtures/bert/ (deterministic: fixed seeds and inputs):
  tiny-bert-*/            tiny random BERTs (hidden 32, 2 layers, vocab 99), HF folders from
                          save_pretrained(safe_serialization=True), each with expected.json:
                          {"architecture", "weights_dtype", "inputs": {"input_ids", "token_type_ids"},
                           "outputs": {"last_hidden_state", ["pooler_output"], [head outputs]}}
                          3 sequences (5, 12, 9 tokens) run as ONE right-padded batch (pad id 0) with an
                          attention mask; outputs cover real tokens only; floats to 8 significant digits.
  minilm_expected.json    all-MiniLM-L6-v2 (real weights from .cache/assets, not committed): 6 texts (3..362
                          tokens; the last is truncated to 256) as one padded batch: input_ids,
                          last_hidden_state (7 digits; null for the truncated text, for size) and the
                          mean-pooled, L2-normalized sentence embeddings (8 digits).
Tiny MLM: save_pretrained drops the tied cls.predictions.decoder.{weight,bias} (= bert.embeddings.
word_embeddings.weight and cls.predictions.bias); loaders must re-tie them.
Run: .cache/venv-torch/bin/python scripts/gen_bert_fixtures.py   (venv: scripts/setup-torch-venv)
"""
import json
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
import transformers
from fixture_utils import perturb, rnd
from safetensors.torch import load_file
from transformers import (AutoModel, BertConfig, BertForMaskedLM, BertForQuestionAnswering,
                          BertForSequenceClassification, BertForTokenClassification, BertModel)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "bert")
MINILM = os.path.join(ROOT, ".cache", "assets", "all-MiniLM-L6-v2")
torch.set_num_threads(1)  # reproducible reductions
transformers.utils.logging.disable_progress_bar()

# ----------------------------------------------------------------------------- tiny models

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=99,
            max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
            initializer_range=0.2)  # 0.2 (not 0.02) so attention is far from uniform
LENS = [5, 12, 9]
# folder, class, extra config, weights dtype, save kwargs
SPECS = [
    ("tiny-bert-model", BertModel, {}, torch.float32, {}),
    ("tiny-bert-mlm", BertForMaskedLM, {}, torch.float32, {}),
    ("tiny-bert-seqcls", BertForSequenceClassification, {"num_labels": 3, "num_attention_heads": 2}, torch.float32, {}),
    ("tiny-bert-tokcls", BertForTokenClassification, {"num_labels": 5}, torch.float32, {}),
    ("tiny-bert-qa", BertForQuestionAnswering, {}, torch.float32, {}),
    ("tiny-bert-fp16", BertModel, {}, torch.float16, {}),
    ("tiny-bert-bf16", BertModel, {}, torch.bfloat16, {}),
    ("tiny-bert-sharded", BertForSequenceClassification, {"num_labels": 3}, torch.float32, {"max_shard_size": "30KB"}),
]
DTYPE_NAME = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def tiny_inputs():
    g = torch.Generator().manual_seed(1234)
    ids = [torch.randint(1, TINY["vocab_size"], (n,), generator=g).tolist() for n in LENS]  # 0 is the pad id
    types = [[0] * n for n in LENS]
    types[1] = [0] * 5 + [1] * (LENS[1] - 5)  # second sequence: a sentence pair
    return ids, types


def pad_batch(ids, types):
    L = max(map(len, ids))
    pad = lambda rows: torch.tensor([r + [0] * (L - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (L - len(r)) for r in ids])
    return pad(ids), pad(types), mask


def run_tiny(model, ids, types):
    """outputs dict (nested lists, real tokens only) for one of the BERT classes"""
    input_ids, token_type_ids, mask = pad_batch(ids, types)
    base = model if isinstance(model, BertModel) else model.bert
    with torch.no_grad():
        b = base(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=mask)
        out = {"last_hidden_state": [b.last_hidden_state[i, :n].tolist() for i, n in enumerate(LENS)]}
        if b.pooler_output is not None:
            out["pooler_output"] = b.pooler_output.tolist()
        if not isinstance(model, BertModel):
            h = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=mask)
            if isinstance(model, BertForQuestionAnswering):
                out["start_logits"] = [h.start_logits[i, :n].tolist() for i, n in enumerate(LENS)]
                out["end_logits"] = [h.end_logits[i, :n].tolist() for i, n in enumerate(LENS)]
            elif isinstance(model, BertForSequenceClassification):
                out["logits"] = h.logits.tolist()
            else:  # MLM, token classification: [seq][len][classes]
                out["logits"] = [h.logits[i, :n].tolist() for i, n in enumerate(LENS)]
    return out


def max_diff(a, b):
    if isinstance(a, list):
        return max(max_diff(x, y) for x, y in zip(a, b)) if len(a) == len(b) else float("inf")
    return abs(a - b)


def gen_tiny():
    ids, types = tiny_inputs()
    for k, (folder, cls, extra, dtype, save_kw) in enumerate(SPECS):
        d = os.path.join(OUT, folder)
        shutil.rmtree(d, ignore_errors=True)
        cfg = BertConfig(**{**TINY, **extra})
        cfg._attn_implementation = "eager"
        torch.manual_seed(100 + k)
        model = cls(cfg).eval()
        perturb(model, 200 + k)
        model.to(dtype).save_pretrained(d, safe_serialization=True, **save_kw)
        # expected outputs in fp32 from the *saved* tensors (fp16/bf16: rounded, then upcast)
        ref = cls(cfg).eval()
        files = [f for f in os.listdir(d) if f.endswith(".safetensors")]
        sd = {}
        for f in files:
            sd.update({n: t.float() for n, t in load_file(os.path.join(d, f)).items()})
        missing, unexpected = ref.load_state_dict(sd, strict=False)
        assert not unexpected, unexpected
        ref.tie_weights()
        assert all(m.startswith("cls.predictions.decoder.") for m in missing), missing  # tied, absent from file
        out = run_tiny(ref, ids, types)
        exp = {"architecture": cls.__name__, "weights_dtype": DTYPE_NAME[dtype],
               "inputs": {"input_ids": ids, "token_type_ids": types}, "outputs": rnd(out, 8)}
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f, separators=(",", ":"))
        # sanity: an independent from_pretrained load reproduces the recorded numbers
        back = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        diff = max(max_diff(v, exp["outputs"][n]) for n, v in run_tiny(back, ids, types).items())
        assert diff < 1e-5, (folder, diff)
        keys = sorted(load_file(os.path.join(d, files[0])).keys()) if len(files) == 1 else None
        print(f"{folder:18s} {cls.__name__:30s} {DTYPE_NAME[dtype]:8s} files={sorted(os.listdir(d))} "
              f"outputs={list(out)} reload maxdiff={diff:.1e}"
              + (f"\n    cls.* keys in file: {[n for n in keys if n.startswith('cls.')]}" if keys and folder.endswith("mlm") else ""))


# ----------------------------------------------------------------------------- MiniLM (real weights)

MINILM_TEXTS = [
    "Hello",
    "A man is eating a piece of bread.",
    "Sentence embeddings map short passages of text to dense vectors, so that similar meanings end up close together.",
    "The weather in the mountains changed quickly; the hikers, who had left at dawn, returned to the valley "
    "before the storm. Nobody was hurt, although two tents (and one very expensive camera) were lost in the wind!",
    "Café au lait, naïve façade, Zürich's Ångström résumé — déjà vu at the smörgåsbord. "
    "東京タワーは日本の電波塔です。北京欢迎你！서울. Ελληνικά, Русский; "
    "emoji 🙂 and math: 3.14159 ≈ π; costs €12.50 / ¥1,980. "
    "\"Quotes\", 'apostrophes', <brackets> & ampersands... tokenized by WordPiece?",
    " ".join(["Matrix multiplication dominates the cost of every layer, so memory bandwidth and cache reuse matter "
              "when a small encoder runs on an ordinary laptop processor."] * 12),
]
HIDDEN_DIGITS = 7


def gen_minilm():
    from tokenizers import Tokenizer
    if not os.path.isfile(os.path.join(MINILM, "model.safetensors")):
        sys.exit(f"{MINILM} missing: run scripts/fetch-assets")
    max_len = json.load(open(os.path.join(MINILM, "sentence_bert_config.json")))["max_seq_length"]
    pool = json.load(open(os.path.join(MINILM, "1_Pooling", "config.json")))
    assert pool["pooling_mode_mean_tokens"] and not pool["pooling_mode_cls_token"]
    tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    full = [len(e.ids) for e in tok.encode_batch(MINILM_TEXTS)]
    tok.enable_truncation(max_length=max_len)
    enc = tok.encode_batch(MINILM_TEXTS)
    ids = [e.ids for e in enc]
    lens = [len(x) for x in ids]
    model = AutoModel.from_pretrained(MINILM, dtype=torch.float32, attn_implementation="eager").eval()
    L = max(lens)
    input_ids = torch.tensor([x + [0] * (L - len(x)) for x in ids])
    mask = torch.tensor([[1] * n + [0] * (L - n) for n in lens])
    with torch.no_grad():
        h = model(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        m = mask[..., None].float()
        emb = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        # sanity: each text alone (no padding) gives the same vectors
        sim = [model(input_ids=torch.tensor([tok.encode(t).ids])).last_hidden_state[0].mean(0) for t in
               ("A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse.")]
        sim = [float(torch.cosine_similarity(sim[0], x, dim=0)) for x in sim[1:]]  # ~0.76, ~0.25 for the real model
        solo = max(float((model(input_ids=torch.tensor([x])).last_hidden_state[0] - h[i, :len(x)]).abs().max())
                   for i, x in enumerate(ids))
    truncated = [n > max_len for n in full]
    # the truncated text's 256 x 384 hidden states would push the file past 1.5 MB: only its embedding is kept
    hidden = [None if t else h[i, :n].tolist() for i, (n, t) in enumerate(zip(lens, truncated))]
    doc = {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": max_len,
           "pooling": "mean over real tokens, then L2 normalize",
           "texts": MINILM_TEXTS, "truncated": truncated, "untruncated_lengths": full, "input_ids": ids,
           "last_hidden_state": [None if x is None else rnd(x, HIDDEN_DIGITS) for x in hidden],
           "sentence_embeddings": rnd(emb.tolist(), 8)}
    path = os.path.join(OUT, "minilm_expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    print(f"minilm: lengths {lens} (untruncated {full}), batch-vs-solo maxdiff {solo:.1e}, "
          f"sanity cos {sim[0]:.3f} / {sim[1]:.3f}, {os.path.getsize(path) / 1e6:.2f} MB")
    assert solo < 1e-4, solo
    assert os.path.getsize(path) < 1.5e6


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_tiny()
    gen_minilm()
