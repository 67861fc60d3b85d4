#!/usr/bin/env python3
"""Generate the expected tokenizer outputs that Flint's Swift tests compare against.

Runs Hugging Face `tokenizers` (pinned 0.23.3, see scripts/fetch-assets) on
Tests/Fixtures/tokenizers/corpus.jsonl and writes one JSON file per tokenizer
setup into Tests/Fixtures/tokenizers/. Deterministic: re-running gives the same
bytes. JSON is ASCII-escaped so control characters survive.

usage: .cache/venv/bin/python scripts/gen_tokenizer_fixtures.py [ASSETS_DIR]   (default .cache/assets)

File layout: {"tokenizer": str, "tokenizers_version": str, "cases": [case, ...]}, with
case = {"text", "pair" (str|null), "truncation" (null|{max_length, strategy, stride, direction}),
        "ids", "type_ids", "offsets" ([start, end] in code points), "special_tokens_mask",
        "tokens", "overflowing" ([{ids, type_ids, offsets, special_tokens_mask, tokens}]),
        "decoded" (decode(ids), skip_special_tokens=True)
        [, "decoded_with_special" (gpt2 files only)]}
or, for truncation settings HF refuses: {"text", "pair", "truncation", "error": true, "error_message"}.
"""
import contextlib
import json
import os
import sys

os.environ["RUST_BACKTRACE"] = "0"  # keep HF panics (recorded as errors) short
import tokenizers  # noqa: E402
from tokenizers import AddedToken, BertWordPieceTokenizer, ByteLevelBPETokenizer, Tokenizer  # noqa: E402

HF_VERSION = "0.23.3"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
EOT = "<|endoftext|>"

# Inputs for the truncation fixtures (long enough to overflow at 8/16/32 tokens).
TRUNC_SINGLES = [
    "The quick brown fox jumps over the lazy dog.",
    "This is a much longer first sequence that contains many more words than the second one, "
    "so truncation has to choose carefully which side to cut when the limit is small.",
    "Café déjà vu, naïve façade, jalapeño, Ångström, Øresund, Łódź, Dvořák.",
    "你好，世界！这是一个中文句子。",
]
TRUNC_PAIRS = [
    ("short", "This is a much longer second sequence that contains many more words than the first one, "
              "so truncation has to choose carefully which side to cut when the limit is small."),
    ("This is a much longer first sequence that contains many more words than the second one, "
     "so truncation has to choose carefully which side to cut when the limit is small.", "short"),
    ("When was the Eiffel Tower built?", "The Eiffel Tower was constructed from 1887 to 1889 as the "
     "entrance arch to the 1889 World's Fair."),
    ("Both sequences here are moderately long and contain several words each.",
     "The second sequence is also moderately long and contains several words as well."),
    ("東京はどこですか？", "東京は日本の首都です。"),
    ("A", "B"),
]
MAX_ERRORS_PER_MESSAGE = 3

# Hard cases for SentencePiece's normalization and the Unigram model (XLM-R layout).
XLMR_EXTRA = [
    ("ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３！", None), ("Ａ\u0301 e\u0301 ｶﾞ ﬁ ½ ™ ① ㈱ ㎏ Ⅻ ﹏ ｡ ･", None),
    ("café naïve Crème brûlée, Ångström, Øresund", None), ("emoji 🙂👍🏽 👨‍👩‍👧 🇫🇷 ❤️", None),
    ("a\u0300\u0301\u0302\u0303b combining e\u0308\u0323 o\u0338", None),
    ("中文测试，日本語のテスト、한국어 테스트", None), ("ctrl\u0001chars\u0007and\ttabs\nnew lines\r\n end", None),
    ("many     spaces   here    ", None), ("   leading and trailing   ", None), ("", None), (" ", None), ("\t\n", None),
    ("\u200b zero\u200dwidth \ufeff bom \u00a0nbsp \u3000ideographic", None),
    ("unknown 𐍈𐌰 ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 chars ⅷ ﷺ", None), ("\u0000nul and \ufffd replacement", None),
    ("İstanbul ΣΊΣΥΦΟΣ ß ǅ", None), ("``quoted'' text -- dashes", None),
    ("A <mask> in the middle", None), ("<s>already special</s>", "and <mask>"),
    ("  two leading", "   three leading"), ("ｆｕｌｌ", "e\u0301tude"), ("", "empty first"),
]


@contextlib.contextmanager
def quiet_stderr():
    """Hide the message a Rust panic prints on fd 2 (the panic itself is recorded)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def load_corpus():
    with open(os.path.join(OUT, "corpus.jsonl"), encoding="utf-8") as f:
        return [(o["text"], o.get("pair")) for o in map(json.loads, f) if o]


def enc_fields(e):
    return {"ids": e.ids, "type_ids": e.type_ids, "offsets": [list(o) for o in e.offsets],
            "special_tokens_mask": e.special_tokens_mask, "tokens": e.tokens}


def encode_case(tok, text, pair, trunc=None, with_special=False):
    case = {"text": text, "pair": pair, "truncation": trunc}
    try:
        with quiet_stderr():
            if trunc is not None:
                tok.enable_truncation(**trunc)  # may itself refuse (ValueError)
            e = tok.encode(text, pair, add_special_tokens=True)
    except BaseException as ex:  # HF raises ValueError/Exception or, for some strides, a Rust panic
        if isinstance(ex, KeyboardInterrupt):
            raise
        return dict(case, error=True, error_message=str(ex).splitlines()[0])
    finally:
        tok.no_truncation()
    case.update(enc_fields(e))
    case["overflowing"] = [enc_fields(o) for o in e.overflowing]
    case["decoded"] = tok.decode(e.ids)
    if with_special:
        case["decoded_with_special"] = tok.decode(e.ids, skip_special_tokens=False)
    return case


def trunc_cases(tok, inputs, settings, with_special=False):
    """Run every (input, setting); keep successes and a few errors per distinct message."""
    cases, seen = [], {}
    for trunc in settings:
        for text, pair in inputs:
            c = encode_case(tok, text, pair, trunc, with_special)
            if c.get("error"):
                n = seen.get(c["error_message"], 0)
                seen[c["error_message"]] = n + 1
                if n >= MAX_ERRORS_PER_MESSAGE:
                    continue
            cases.append(c)
    return cases


def t(max_length, strategy="longest_first", stride=0, direction="right"):
    return {"max_length": max_length, "strategy": strategy, "stride": stride, "direction": direction}


def write(name, desc, cases):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write('{"tokenizer": %s, "tokenizers_version": %s, "cases": [\n'
                % (json.dumps(desc), json.dumps(tokenizers.__version__)))
        f.write(",\n".join(json.dumps(c, ensure_ascii=True, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    errs = sum(1 for c in cases if c.get("error"))
    print(f"{name}: {len(cases)} cases ({errs} errors), {os.path.getsize(path)} bytes")


def write_overrides(name, layout, base, byte_piece_score=None):
    """How a variant differs from xlmr-unigram/tokenizer.json: its replaced top-level sections
    (the charsmap written as "@charsmap@") and, when byte_piece_score is set, byte_fallback on with
    the 256 <0xXX> pieces appended at that score. The Swift test applies them to the asset."""
    charsmap = base["normalizer"]["normalizers"][0]["precompiled_charsmap"]
    sections = {k: v for k, v in layout.items() if k != "model" and v != base[k]}
    text = json.dumps({"sections": sections, "byte_piece_score": byte_piece_score}, ensure_ascii=True, indent=1)
    with open(os.path.join(OUT, name), "w", encoding="ascii", newline="\n") as f:
        f.write(text.replace(charsmap, "@charsmap@") + "\n")


def main():
    if tokenizers.__version__ != HF_VERSION:
        sys.exit(f"need tokenizers=={HF_VERSION}, found {tokenizers.__version__}")
    assets = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".cache", "assets")
    minilm_dir = os.path.join(assets, "all-MiniLM-L6-v2")
    gpt2_dir = os.path.join(assets, "gpt2-hf")
    vocab_txt = os.path.join(minilm_dir, "vocab.txt")
    corpus = load_corpus()

    # --- WordPiece / BERT -------------------------------------------------
    minilm = Tokenizer.from_file(os.path.join(minilm_dir, "tokenizer.json"))
    minilm.no_padding()  # the file carries Fixed(128) padding and truncation 128
    minilm.no_truncation()
    write("minilm_tokenizer_json.json",
          "Tokenizer.from_file(all-MiniLM-L6-v2/tokenizer.json); no_padding(); no_truncation()",
          [encode_case(minilm, x, p) for x, p in corpus])

    with open(os.path.join(minilm_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    kw = dict(lowercase=cfg.get("do_lower_case", True), strip_accents=cfg.get("strip_accents"),
              handle_chinese_chars=cfg.get("tokenize_chinese_chars", True), clean_text=True)
    bert_variants = [
        ("minilm_vocab_txt.json", kw),
        ("bert_cased_vocab_txt.json", dict(kw, lowercase=False, strip_accents=False)),
        ("bert_strip_no_lower.json", dict(kw, lowercase=False, strip_accents=True)),
    ]
    for name, args in bert_variants:
        tok = BertWordPieceTokenizer(vocab_txt, **args)
        desc = "BertWordPieceTokenizer(all-MiniLM-L6-v2/vocab.txt, %s)" % ", ".join(
            f"{k}={v!r}" for k, v in sorted(args.items()))
        write(name, desc, [encode_case(tok, x, p) for x, p in corpus])

    # --- Byte-level BPE / GPT-2 ---------------------------------------------
    gpt2_files = ByteLevelBPETokenizer(os.path.join(gpt2_dir, "vocab.json"),
                                       os.path.join(gpt2_dir, "merges.txt"))
    # same added token as scripts/make_gpt2_tokenizer_json.py
    gpt2_files.add_special_tokens([AddedToken(EOT, special=True, normalized=True)])
    assert gpt2_files.token_to_id(EOT) == 50256
    gpt2_json = Tokenizer.from_file(os.path.join(gpt2_dir, "tokenizer.json"))
    files_cases = [encode_case(gpt2_files, x, p, with_special=True) for x, p in corpus]
    json_cases = [encode_case(gpt2_json, x, p, with_special=True) for x, p in corpus]
    if files_cases != json_cases:
        sys.exit("gpt2 from vocab files and gpt2-hf/tokenizer.json disagree")
    write("gpt2_vocab_files.json", "ByteLevelBPETokenizer(gpt2-hf/vocab.json, gpt2-hf/merges.txt) "
          "+ add_special_tokens([AddedToken('<|endoftext|>', special=True, normalized=True)])", files_cases)
    write("gpt2_tokenizer_json.json", "Tokenizer.from_file(gpt2-hf/tokenizer.json) "
          "(built by scripts/make_gpt2_tokenizer_json.py)", json_cases)

    # --- RoBERTa: byte-level BPE with RobertaProcessing ----------------------
    roberta = Tokenizer.from_file(os.path.join(assets, "roberta-bpe", "tokenizer.json"))
    roberta_corpus = corpus + [("A <mask> in the middle", None), ("<s>already special</s>", "and <mask>")]
    write("roberta_tokenizer_json.json", "Tokenizer.from_file(roberta-bpe/tokenizer.json) "
          "(built by scripts/make_gpt2_tokenizer_json.py --roberta)",
          [encode_case(roberta, x, p, with_special=True) for x, p in roberta_corpus])

    # --- XLM-RoBERTa: Unigram, Metaspace, Precompiled ------------------------
    xlmr_path = os.path.join(assets, "xlmr-unigram", "tokenizer.json")
    xlmr = Tokenizer.from_file(xlmr_path)
    xlmr_corpus = corpus + XLMR_EXTRA
    write("xlmr_tokenizer_json.json", "Tokenizer.from_file(xlmr-unigram/tokenizer.json) "
          "(scripts/make_xlmr_tokenizer.py: sentencepiece unigram, nmt_nfkc, XLMRobertaConverter)",
          [encode_case(xlmr, x, p, with_special=True) for x, p in xlmr_corpus])
    with open(xlmr_path, encoding="utf-8") as f:
        layout = json.load(f)
    charsmap = layout["normalizer"]["normalizers"][0]
    # The other components and options real files use, on the same model.
    variant = json.loads(json.dumps(layout))
    variant["normalizer"] = {"type": "Sequence", "normalizers": [
        charsmap, {"type": "Replace", "pattern": {"String": "``"}, "content": "\""},
        {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}
    variant["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    variant["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    variant["post_processor"] = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                                 "trim_offsets": True, "add_prefix_space": True}
    write_overrides("xlmr_variant_overrides.json", variant, layout)
    write("xlmr_variant.json", "xlmr-unigram with normalizer Sequence[Precompiled, Replace('``'), Lowercase, "
          "Strip, Replace(' {2,}', ' ')], Metaspace(prepend_scheme=first), RobertaProcessing (xlmr_variant_overrides.json)",
          [encode_case(Tokenizer.from_str(json.dumps(variant)), x, p, with_special=True) for x, p in xlmr_corpus])
    fallback = json.loads(json.dumps(layout))
    fallback["normalizer"] = charsmap
    fallback["model"]["byte_fallback"] = True
    fallback["model"]["vocab"] += [["<0x%02X>" % b, -20.0] for b in range(256)]
    fallback["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
    fallback["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
    write_overrides("xlmr_byte_fallback_overrides.json", fallback, layout, byte_piece_score=-20.0)
    write("xlmr_byte_fallback.json", "xlmr-unigram with byte_fallback and 256 <0xXX> pieces, normalizer Precompiled only, "
          "Metaspace(prepend_scheme=never, split=false) (xlmr_byte_fallback_overrides.json)",
          [encode_case(Tokenizer.from_str(json.dumps(fallback)), x, p, with_special=True) for x, p in xlmr_corpus])

    # --- Truncation -------------------------------------------------------
    inputs = [(x, None) for x in TRUNC_SINGLES] + TRUNC_PAIRS
    settings = [t(m, s, st) for s in ("longest_first", "only_first", "only_second")
                for m in (8, 16, 32) for st in (0, 2, 4)]
    settings += [t(8, "longest_first", 0, "left"), t(16, "longest_first", 2, "left"),
                 t(16, "only_first", 4, "left"), t(16, "only_second", 2, "left")]
    settings += [t(m) for m in (1, 2, 3, 4)]  # below / at the number of added special tokens
    settings += [t(8, "longest_first", 6), t(8, "longest_first", 8)]  # stride too large
    write("minilm_truncation.json", "all-MiniLM-L6-v2/tokenizer.json, no padding, enable_truncation(...)",
          trunc_cases(minilm, inputs, settings))

    g_inputs = [(TRUNC_SINGLES[1], None), (TRUNC_SINGLES[2], None), ("Hello<|endoftext|>World again and again", None),
                TRUNC_PAIRS[2], TRUNC_PAIRS[0]]
    g_settings = [t(m, "longest_first", st) for m in (8, 16) for st in (0, 2, 4)]
    g_settings += [t(8, "only_second", 2), t(8, "longest_first", 2, "left"), t(4, "longest_first", 4)]
    write("gpt2_truncation.json", "gpt2-hf/tokenizer.json, enable_truncation(...)",
          trunc_cases(gpt2_json, g_inputs, g_settings, with_special=True))
    write("roberta_truncation.json", "roberta-bpe/tokenizer.json, enable_truncation(...)",
          trunc_cases(roberta, g_inputs, g_settings, with_special=True))
    x_inputs = g_inputs + [(XLMR_EXTRA[0][0], None), (XLMR_EXTRA[3][0], "many     spaces   here")]
    write("xlmr_truncation.json", "xlmr-unigram/tokenizer.json, enable_truncation(...)",
          trunc_cases(xlmr, x_inputs, g_settings, with_special=True))


if __name__ == "__main__":
    main()
