#!/usr/bin/env python3
"""gen_squad_fixtures.py: SQuAD v1.1 and v2.0 files made for Flint's `flint eval squad` tests, with the official metrics.

Writes Tests/Fixtures/squad/:
  squad-v1.1.json, squad-v2.0.json   small SQuAD-format files (several answers per question; v2.0 with impossible ones)
  predictions-v1.1.json, predictions-v2.0.json
                                     hand-made predictions {qid: text} that exercise the normalization (case, articles,
                                     punctuation, spacing), partial overlaps, empty answers and missing-in-gold cases
  expected.json                      {"v1.1": metrics, "v2.0": metrics, "pipeline": {...}}: the official scripts' numbers
                                     (evaluate-v1.1.py and evaluate-v2.0.py, re-implemented below from their definitions)
                                     for those predictions, and for the predictions transformers 4.57's question-answering
                                     pipeline makes with Tests/Fixtures/qa/tiny-bert-qa (max_seq_len 40, doc_stride 12;
                                     v2.0 with handle_impossible_answer) on the same files.
Run: .cache/venv-qa/bin/python scripts/gen_squad_fixtures.py   (venv: see gen_qa_fixtures.py)
"""
import collections
import json
import os
import re
import string

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "squad")


# ---- the official evaluation (evaluate-v2.0.py; v1.1 differs where noted)
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def get_tokens(s):
    return normalize_answer(s).split() if s else []


def f1_v2(gold, pred):
    g, p = get_tokens(gold), get_tokens(pred)
    common = collections.Counter(g) & collections.Counter(p)
    same = sum(common.values())
    if len(g) == 0 or len(p) == 0:
        return int(g == p)
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_v1(gold, pred):  # evaluate-v1.1.py: no special case for empty answers
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def evaluate_v1(dataset, preds):
    f1 = exact = total = 0
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                total += 1
                if qa["id"] not in preds:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                pred = preds[qa["id"]]
                exact += max(normalize_answer(pred) == normalize_answer(g) for g in golds)
                f1 += max(f1_v1(g, pred) for g in golds)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total, "total": total}


def evaluate_v2(dataset, preds):
    has_ans, exact, f1 = {}, {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                has_ans[qid] = bool(qa["answers"])
                golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
                if qid not in preds:
                    continue
                exact[qid] = max(int(normalize_answer(g) == normalize_answer(preds[qid])) for g in golds)
                f1[qid] = max(f1_v2(g, preds[qid]) for g in golds)

    def block(qids):
        return 100.0 * sum(exact[q] for q in qids) / len(qids), 100.0 * sum(f1[q] for q in qids) / len(qids), len(qids)

    out = dict(zip(["exact", "f1", "total"], block(list(exact))))
    result = {"exact_match": out["exact"], "f1": out["f1"], "total": out["total"]}
    for name, want in [("HasAns", True), ("NoAns", False)]:
        qids = [q for q in exact if has_ans[q] == want]
        if qids:
            e, f, n = block(qids)
            result.update({f"{name}_exact": e, f"{name}_f1": f, f"{name}_total": n})
    return result


# ---- the files
CONTEXT_1 = "The old stone bridge was built by King Harald in the year 1120, north of the river."
CONTEXT_2 = "Flint is a city on the river Dee, in the north. It was founded in 1277 by Edward the First."
CONTEXT_3 = "Café Zoë opened its doors in Ærøskøbing in 1999, beside the Old Harbour."


def answer(context, text):
    return {"text": text, "answer_start": context.index(text)}


def dataset(v2):
    qas1 = [
        {"id": "q1", "question": "Who built the bridge?",
         "answers": [answer(CONTEXT_1, "King Harald"), answer(CONTEXT_1, "Harald"), answer(CONTEXT_1, "by King Harald")]},
        {"id": "q2", "question": "When was the bridge built?",
         "answers": [answer(CONTEXT_1, "1120"), answer(CONTEXT_1, "in the year 1120")]},
        {"id": "q3", "question": "What was built?", "answers": [answer(CONTEXT_1, "The old stone bridge"), answer(CONTEXT_1, "stone bridge")]},
    ]
    qas2 = [
        {"id": "q4", "question": "Where is Flint?", "answers": [answer(CONTEXT_2, "on the river Dee"), answer(CONTEXT_2, "in the north")]},
        {"id": "q5", "question": "Who founded Flint?", "answers": [answer(CONTEXT_2, "Edward the First"), answer(CONTEXT_2, "Edward")]},
    ]
    qas3 = [{"id": "q6", "question": "When was the café opened?", "answers": [answer(CONTEXT_3, "1999"), answer(CONTEXT_3, "in 1999")]},
            {"id": "q7", "question": "Where is Café Zoë?", "answers": [answer(CONTEXT_3, "Ærøskøbing"), answer(CONTEXT_3, "beside the Old Harbour")]}]
    if v2:
        for q in qas1 + qas2 + qas3:
            q["is_impossible"] = False
        qas2.append({"id": "q8", "question": "Who destroyed Flint?", "answers": [], "is_impossible": True,
                     "plausible_answers": [answer(CONTEXT_2, "Edward")]})
        qas3.append({"id": "q9", "question": "Who closed the café?", "answers": [], "is_impossible": True})
    data = [{"title": "Bridges", "paragraphs": [{"context": CONTEXT_1, "qas": qas1}]},
            {"title": "Places", "paragraphs": [{"context": CONTEXT_2, "qas": qas2}, {"context": CONTEXT_3, "qas": qas3}]}]
    return {"version": "v2.0" if v2 else "1.1", "data": data}


PREDICTIONS = {
    "q1": "king  HARALD.",              # case, spacing, punctuation: exact
    "q2": "the year 1120",              # partial
    "q3": "an old stone bridge",        # article differs: exact after normalization
    "q4": "river",                      # partial
    "q5": "Edward the First of England",  # partial, over-long
    "q6": "",                           # empty
    "q7": "Ærøskøbing, beside",         # unicode, partial
    "q8": "",                           # correct no-answer
    "q9": "the café",                   # wrong answer to an impossible question
}


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    for version, v2 in [("v1.1", False), ("v2.0", True)]:
        d = dataset(v2)
        with open(os.path.join(OUT, f"squad-{version}.json"), "w") as f:
            json.dump(d, f, indent=1, ensure_ascii=False)
        qids = [qa["id"] for a in d["data"] for p in a["paragraphs"] for qa in p["qas"]]
        preds = {q: PREDICTIONS[q] for q in qids}
        with open(os.path.join(OUT, f"predictions-{version}.json"), "w") as f:
            json.dump(preds, f, indent=1, ensure_ascii=False)
        expected[version] = (evaluate_v2 if v2 else evaluate_v1)(d["data"], preds)
    # the transformers 4.57 pipeline's own predictions with the tiny QA model
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import BertForQuestionAnswering, pipeline
    torch.set_num_threads(1)
    folder = os.path.join(ROOT, "Tests", "Fixtures", "qa", "tiny-bert-qa")
    qa = pipeline("question-answering", model=BertForQuestionAnswering.from_pretrained(folder, attn_implementation="eager").eval(),
                  tokenizer=folder, device="cpu")
    expected["pipeline"] = {"model": "qa/tiny-bert-qa", "max_seq_len": 40, "doc_stride": 12}
    for version, v2 in [("v1.1", False), ("v2.0", True)]:
        d = dataset(v2)
        preds = {}
        for a in d["data"]:
            for p in a["paragraphs"]:
                for q in p["qas"]:
                    preds[q["id"]] = qa(question=q["question"], context=p["context"], max_seq_len=40, doc_stride=12,
                                        handle_impossible_answer=v2)["answer"]
        expected["pipeline"][version] = {"predictions": preds, "metrics": (evaluate_v2 if v2 else evaluate_v1)(d["data"], preds)}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
    print(json.dumps(expected, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
