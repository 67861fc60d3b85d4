#!/usr/bin/env python3
"""gen_task_fixtures.py: Hugging Face pipeline outputs for `flint classify`, `flint rerank` and `flint tag`.

Builds seeded tiny random BERTs with a small WordPiece vocabulary of its own (saved with the
tokenizer, so the folders are complete), runs transformers 5.23's `text-classification` and
`token-classification` pipelines on them, and writes Tests/Fixtures/tasks/:
  tiny-seqcls/        BertForSequenceClassification, 4 labels (softmax), id2label names
  tiny-multilabel/    the same with problem_type multi_label_classification (sigmoid)
  tiny-crossencoder/  one label (a reranker: sigmoid of the one logit)
  tiny-ner/           BertForTokenClassification, O B-PER I-PER B-LOC I-LOC B-ORG I-ORG
  expected.json       {"classify": [{"model", "text", "pair", "top_k", "result"}],
                       "rerank": [{"model", "query", "texts", "result": [{"index", "score"}]}],
                       "tag": [{"model", "text", "aggregation", "result": [entity...]}]}
Every decision a test checks (argmax, order) is made with a margin of at least 1e-3 between the
first and second candidates, so that 1e-4 of float noise cannot flip it; the script fails otherwise.
Run: VENV=/work/main/.cache/venv-torch $VENV/bin/python scripts/gen_task_fixtures.py
"""
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (BertConfig, BertForSequenceClassification, BertForTokenClassification,  # noqa: E402
                          BertTokenizerFast, pipeline)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tasks")
torch.set_num_threads(1)
transformers.utils.logging.disable_progress_bar()

WORDS = ("the a of and to in is was lives went john smith mary paris london new york city bank river "
         "company works at for with good bad movie great terrible not very this that it what where who "
         "play played playing un believ able happ y run ##s ##ing ##ed ##er ##ly ##able ##ness").split()
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(".,!?'-") + [w for w in WORDS if not w.startswith("##")]
         + LETTERS + ["##" + c for c in LETTERS] + [w for w in WORDS if w.startswith("##")])
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=len(VOCAB),
            max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
            initializer_range=0.02)  # small: token identity survives the layers, so token labels vary
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

CLASSIFY_TEXTS = ["This movie was great!", "what a terrible, terrible movie", "John Smith lives in New York.",
                  "unbelievable", "Zyx qwv.", "a"]
PAIRS = [("Where does Mary live?", "Mary lives in Paris."), ("good", "bad")]
RERANK = [("where does john live", ["John lives in London.", "The river bank.", "john smith lives in new york city",
                                    "a great movie", "Paris"])]
TAG_TEXTS = ["John Smith lives in New York.", "Mary went to Paris and London with johnny.",
             "the company Smithers works at the river bank", "unbelievable happyness, playing!",
             "Qwerty Zyxw plays in Yorkshire"]
AGGREGATIONS = ["none", "simple", "first", "average", "max"]
MARGIN = 1e-3


def save_tokenizer(folder):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=True, model_max_length=64)
    tok.save_pretrained(folder)
    return tok


def build(name, cls, seed, **extra):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    torch.manual_seed(seed)
    model = cls(BertConfig(**{**TINY, **extra})).eval()
    with torch.no_grad():  # a strong head, so that labels differ from token to token
        model.classifier.weight.normal_(0.0, 1.5)
        model.classifier.bias.normal_(0.0, 0.5)
    model.save_pretrained(folder, safe_serialization=True)
    save_tokenizer(folder)
    for junk in ["special_tokens_map.json"]:
        p = os.path.join(folder, junk)
        if os.path.exists(p):
            os.remove(p)
    return folder


def margin(values):
    top = sorted((float(v) for v in values), reverse=True)
    return top[0] - top[1] if len(top) > 1 else float("inf")


class SmallMargin(Exception):
    pass


def check(ok, what):
    if not ok:
        raise SmallMargin(f"margin below {MARGIN}: {what}")


def first_clear(make, cases, name):
    """The cases of the first seed (from 0) whose decisions are all clear; deterministic."""
    for seed in range(300):
        folder = make(seed)
        try:
            return cases(folder, name), seed
        except SmallMargin as e:
            last = e
    raise SystemExit(f"{name}: no seed below 300 gives clear decisions ({last})")


def num(x):
    return round(float(x), 7)


def classify_cases(folder, name):
    clf = pipeline("text-classification", model=folder, tokenizer=folder, device="cpu")
    cases = []
    inputs = [(t, None) for t in CLASSIFY_TEXTS] + PAIRS
    for text, pair in inputs:
        arg = text if pair is None else {"text": text, "text_pair": pair}
        every = clf(arg, top_k=None)
        check(min(a["score"] - b["score"] for a, b in zip(every, every[1:])) >= MARGIN if len(every) > 1 else True,
              f"{name} {text!r}")
        best = clf(arg)
        best = best[0] if isinstance(best, list) else best
        cases.append({"model": name, "text": text, "pair": pair, "top_k": None,
                      "result": {"label": best["label"], "score": num(best["score"])}})
        for k in (2, 10):
            got = clf(arg, top_k=k)
            cases.append({"model": name, "text": text, "pair": pair, "top_k": k,
                          "result": [{"label": r["label"], "score": num(r["score"])} for r in got]})
    return cases


def rerank_cases(folder, name):
    clf = pipeline("text-classification", model=folder, tokenizer=folder, device="cpu")
    cases = []
    for query, texts in RERANK:
        scores = [clf({"text": query, "text_pair": t}, top_k=None)[0]["score"] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        check(min(scores[a] - scores[b] for a, b in zip(order, order[1:])) >= MARGIN, f"{name} rerank order")
        cases.append({"model": name, "query": query, "texts": texts,
                      "result": [{"index": i, "score": num(scores[i])} for i in order]})
    return cases


def tag_cases(folder, name):
    cases = []
    model = BertForTokenClassification.from_pretrained(folder).eval()
    tok = BertTokenizerFast.from_pretrained(folder)
    for text in TAG_TEXTS:
        # Per-token probabilities: every argmax (tokens, word averages) must be clear.
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            probs = torch.softmax(model(**enc).logits[0], -1).numpy()
        for row in probs:
            check(margin(row) >= MARGIN, f"{name} token argmax in {text!r}")
        for aggregation in AGGREGATIONS:
            ner = pipeline("token-classification", model=folder, tokenizer=folder, device="cpu",
                           aggregation_strategy=aggregation)
            got = ner(text)
            result = []
            for e in got:
                r = {k: (num(v) if k == "score" else int(v) if k in ("start", "end", "index") else v) for k, v in e.items()}
                result.append(r)
            cases.append({"model": name, "text": text, "aggregation": aggregation, "result": result})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    labels4 = {i: n for i, n in enumerate(["negative", "neutral", "positive", "mixed"])}
    multi_labels = {0: "sports", 1: "politics", 2: "science"}
    ner_id2label = dict(enumerate(NER_LABELS))
    seqcls, s1 = first_clear(lambda seed: build("tiny-seqcls", BertForSequenceClassification, seed, num_labels=4,
                                                id2label=labels4, label2id={v: k for k, v in labels4.items()}),
                             classify_cases, "tiny-seqcls")
    multi, s2 = first_clear(lambda seed: build("tiny-multilabel", BertForSequenceClassification, seed, num_labels=3,
                                               problem_type="multi_label_classification", id2label=multi_labels,
                                               label2id={v: k for k, v in multi_labels.items()}),
                            classify_cases, "tiny-multilabel")

    def cross_cases(folder, name):
        return classify_cases(folder, name), rerank_cases(folder, name)
    (cross, rerank), s3 = first_clear(lambda seed: build("tiny-crossencoder", BertForSequenceClassification, seed,
                                                         num_labels=1, initializer_range=0.2), cross_cases, "tiny-crossencoder")
    tag, s4 = first_clear(lambda seed: build("tiny-ner", BertForTokenClassification, seed, num_labels=len(NER_LABELS),
                                             id2label=ner_id2label, label2id={v: k for k, v in ner_id2label.items()}),
                          tag_cases, "tiny-ner")
    doc = {"transformers_version": transformers.__version__, "seeds": [s1, s2, s3, s4],
           "classify": seqcls + multi + cross, "rerank": rerank, "tag": tag}
    with open(os.path.join(OUT, "expected.json"), "w", encoding="ascii", newline="\n") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")
    groups = sum(1 for c in doc["tag"] for e in c["result"] if "entity_group" in e)
    print(f"{OUT}: {len(doc['classify'])} classify, {len(doc['rerank'])} rerank, {len(doc['tag'])} tag cases "
          f"({sum(len(c['result']) for c in doc['tag'])} entities, {groups} groups)")


if __name__ == "__main__":
    main()
