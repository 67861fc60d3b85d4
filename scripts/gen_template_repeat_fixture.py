#!/usr/bin/env python3
"""Generate the HF answers for a TemplateProcessing pair template that names sequence A twice.

The tokenizer-json fuzz target found that such a template (`[CLS] $A [CLS] $A [SEP] $B [SEP]`)
returns more tokens than the truncation's max_length: truncation budgets A once and the template
then repeats it. Hugging Face `tokenizers` 0.23.3 does the same, so Flint must match its ids (and
the fuzz target's length check exempts such templates). Writes, deterministically:

  Tests/Fixtures/tokenizers/template_repeat_tokenizer.json   the tokenizer (a valid tokenizer.json)
  Tests/Fixtures/tokenizers/template_repeat_truncation.json  HF's encodings, in the layout of
                                                             scripts/gen_tokenizer_fixtures.py
  Fuzz/corpus/tokenizer-json/template-repeat                 the same tokenizer, as a fuzz seed

usage: .cache/venv/bin/python scripts/gen_template_repeat_fixture.py   (needs no assets)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from gen_tokenizer_fixtures import HF_VERSION, OUT, ROOT, TRUNC_PAIRS, encode_case, t, trunc_cases, write  # noqa: E402


def special(content, id_):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def piece(kind, id_, type_id):
    return {kind: {"id": id_, "type_id": type_id}}


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "fl", "##int", "a", "b", ",", "!", ".", "the",
         "quick", "brown", "fox", "short", "is", "this", "sequence", "second", "first", "long", "##er", "when", "was"]

# The fuzz finding (Fuzz/corpus/tokenizer-json/template-repeat-misspelled) with its misspelled fields put right.
LAYOUT = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [special("[PAD]", 0), special("[CLS]", 2), special("[SEP]", 3)],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
                   "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0)],
        "pair": [piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[CLS]", 0),
                 piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0), piece("Sequence", "B", 1),
                 piece("SpecialToken", "[SEP]", 1)],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}},
    },
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
              "vocab": {token: i for i, token in enumerate(VOCAB)}},
}

# The fuzz target's texts (Sources/FlintFuzz/FuzzTargets.swift, sampleTexts) and a few more.
FUZZ_TEXTS = ["Hello, world! Flint's tokenizer.", "  h\u00e9llo\tw\u00f6rld \u4f60\u597d \U0001f642\u0301", "",
              "a b c d e f g h i j k l m n o p"]
INPUTS = [(FUZZ_TEXTS[1], FUZZ_TEXTS[2]), ("a b a b a b", "b a b"), ("a", "b b b b b b"),
          ("the quick brown fox", "hello worlds"), ("hello", "the quick brown fox is short"),
          ("short", "this is the second sequence, a longer one")]
# Long pairs overflow into hundreds of windows under the small limits: only without truncation.
LONG = [(FUZZ_TEXTS[3], FUZZ_TEXTS[0]), TRUNC_PAIRS[1], TRUNC_PAIRS[2]]
SINGLES = [(FUZZ_TEXTS[0], None), ("the quick brown fox is short", None)]


def main():
    if tokenizers.__version__ != HF_VERSION:
        sys.exit(f"need tokenizers=={HF_VERSION}, found {tokenizers.__version__}")
    text = json.dumps(LAYOUT, ensure_ascii=True, indent=1) + "\n"
    for path in (os.path.join(OUT, "template_repeat_tokenizer.json"),
                 os.path.join(ROOT, "Fuzz", "corpus", "tokenizer-json", "template-repeat")):
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
    tok = Tokenizer.from_str(text)
    settings = [t(m, s, st) for s in ("longest_first", "only_first", "only_second") for m in (5, 7, 9, 12) for st in (0, 1, 2)]
    settings += [t(9, "longest_first", 1, "left"), t(12, "only_second", 1, "left")]
    cases = [encode_case(tok, x, p) for x, p in INPUTS + LONG + SINGLES]
    cases += trunc_cases(tok, INPUTS + SINGLES, settings)
    write("template_repeat_truncation.json", "template_repeat_tokenizer.json (pair template [CLS] $A [CLS] $A [SEP] $B:1 "
          "[SEP]:1), no truncation and enable_truncation(...)", cases)
    over = sum(1 for c in cases if not c.get("error") and c["truncation"] and len(c["ids"]) > c["truncation"]["max_length"])
    print(f"cases longer than max_length in HF: {over}")


if __name__ == "__main__":
    main()
