#!/usr/bin/env python3
"""gen_qa_fixtures.py: reference answers of transformers 4.57's question-answering pipeline (removed in transformers 5)
for Flint's `flint answer`, on seeded tiny random QA models.

Writes Tests/Fixtures/qa/:
  tiny-bert-qa/, tiny-distilbert-qa/   BertForQuestionAnswering / DistilBertForQuestionAnswering (hidden 32, 2 layers,
                                       64 positions) with a 99-token WordPiece tokenizer (tokenizer.json, lowercasing,
                                       accents stripped) made here; model.safetensors + config.json
  expected.json                        {"models": [...], "cases": [{"model", "options": {max_seq_len, doc_stride,
                                       max_answer_len, top_k, handle_impossible_answer}, "items": [{"question",
                                       "context", "answers": [{"answer", "score", "start", "end"}, best first]}]}]}
Contexts include ones longer than one window (several doc-stride windows) and questions whose best is the no-answer.
Run: python3 -m venv .cache/venv-qa && .cache/venv-qa/bin/pip install /opt/wheels/torch-*.whl "transformers==4.57.*"
     .cache/venv-qa/bin/python scripts/gen_qa_fixtures.py
"""
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
import transformers
from fixture_utils import perturb
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import (BertConfig, BertForQuestionAnswering, BertTokenizerFast, DistilBertConfig,
                          DistilBertForQuestionAnswering, DistilBertTokenizerFast, pipeline)

assert transformers.__version__.startswith("4.57"), transformers.__version__
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "qa")
torch.set_num_threads(1)

LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + LETTERS + ["##" + c for c in LETTERS] + [".", ",", "?", "'", "-"]
         + ["the", "of", "and", "in", "is", "was", "to", "by", "city", "river", "flint", "built", "year", "who", "what",
            "where", "when", "it", "on", "at", "for", "from", "with", "north", "south", "stone", "bridge", "king", "queen",
            "old", "new", "##es", "##ed", "##ing", "##er", "##ly", "paris"])
assert len(VOCAB) == 99, len(VOCAB)

ITEMS = [
    ("Who built the bridge?", "The old stone bridge was built by King Harald in the year 1120, north of the river."),
    ("Where is Flint?", "Flint is a city on the river Dee, in the north. It was founded in 1277 by Edward the First."),
    ("What is the queen's city?",
     "In the south, the queen ruled from Paris for ten years. The king lived in the north, where the river meets the sea. "
     "Every year the people of the old city built a new bridge of stone, and every year the river took it away again. "
     "When the queen came north, she brought with her builders from Paris, and their bridge is standing still."),
    ("When was the café opened?", "Café Zoë opened its doors in Ærøskøbing in 1999, beside the Old Harbour."),
    ("Who is the king of the moon?", "Stones and rivers are found in many cities; nothing here speaks of kings."),
    # short contexts: the no-answer ([CLS]) competes with few spans
    ("Who?", "Dee."), ("What year?", "Old Harald"), ("Where is it?", "North"), ("Why?", "Because."), ("When?", "Then, not now"),
    ("Who built it?", "Paris"),
]
CASES = [
    dict(max_seq_len=40, doc_stride=12, max_answer_len=15, top_k=1, handle_impossible_answer=False),
    dict(max_seq_len=40, doc_stride=12, max_answer_len=15, top_k=3, handle_impossible_answer=False),
    dict(max_seq_len=40, doc_stride=12, max_answer_len=15, top_k=1, handle_impossible_answer=True),
    dict(max_seq_len=48, doc_stride=20, max_answer_len=4, top_k=4, handle_impossible_answer=True),
    dict(max_seq_len=64, doc_stride=32, max_answer_len=15, top_k=2, handle_impossible_answer=False),
    dict(max_seq_len=40, doc_stride=12, max_answer_len=1, top_k=2, handle_impossible_answer=True),
]


def tokenizer_object():
    t = Tokenizer(WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]", max_input_chars_per_word=100))
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                     special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    t.decoder = decoders.WordPiece(prefix="##")
    return t


def build(name, model_cls, config, tokenizer_cls, seed):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    perturb(model, seed + 1)
    model.save_pretrained(d, safe_serialization=True)
    tok = tokenizer_cls(tokenizer_object=tokenizer_object(), unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                        cls_token="[CLS]", mask_token="[MASK]", model_max_length=64)
    tok.save_pretrained(d)
    for extra in ["vocab.txt", "special_tokens_map.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    return d


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    tiny = dict(vocab_size=99, max_position_embeddings=64, initializer_range=0.2)
    models = {
        "qa/tiny-bert-qa": build("tiny-bert-qa", BertForQuestionAnswering,
                                 BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                            type_vocab_size=2, **tiny), BertTokenizerFast, 700),
        "qa/tiny-distilbert-qa": build("tiny-distilbert-qa", DistilBertForQuestionAnswering,
                                       DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, **tiny),
                                       DistilBertTokenizerFast, 800),
    }
    cases = []
    for name, d in models.items():
        cls = BertForQuestionAnswering if "distil" not in name else DistilBertForQuestionAnswering
        model = cls.from_pretrained(d, attn_implementation="eager").eval()  # 4.57's DistilBERT sdpa path fails on torch 2.13
        qa = pipeline("question-answering", model=model, tokenizer=d, device="cpu")
        for options in CASES:
            items = []
            for question, context in ITEMS:
                out = qa(question=question, context=context, **options)
                answers = out if isinstance(out, list) else [out]
                items.append({"question": question, "context": context,
                              "answers": [{"answer": a["answer"], "score": float(a["score"]), "start": int(a["start"]),
                                           "end": int(a["end"])} for a in answers]})
            cases.append({"model": name, "options": options, "items": items})
            windows = [len(qa.tokenizer(q, c, truncation="only_second", max_length=options["max_seq_len"],
                                        stride=options["doc_stride"], return_overflowing_tokens=True)["input_ids"])
                       for q, c in ITEMS]
            print(name, options, "windows per item:", windows, "no-answers:",
                  sum(1 for it in items if it["answers"][0]["answer"] == ""))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"models": list(models), "cases": cases}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
