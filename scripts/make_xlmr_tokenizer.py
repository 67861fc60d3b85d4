#!/usr/bin/env python3
"""Build a small XLM-RoBERTa-layout tokenizer.json for Flint's Unigram tests.

Real XLM-R files cannot be downloaded here (no network but PyPI), so this trains a SentencePiece
unigram model (nmt_nfkc normalization, so the precompiled charsmap is the real one) on a few
hundred KB of multilingual text and converts it with transformers' XLMRobertaConverter, the code
that made the Hub's XLM-R tokenizer.json files: Precompiled + Strip + Replace normalizer,
Metaspace pre-tokenizer and decoder, <s> <pad> </s> <unk> as ids 0-3, <mask> last.

usage:
  VENV/bin/python scripts/make_xlmr_tokenizer.py train OUT_DIR
      VENV needs sentencepiece, protobuf, tokenizers==0.23.3 and transformers==5.23.0 (no torch).
      Writes OUT_DIR/tokenizer.json (+ the .model and the training text) and
      Tests/Fixtures/tokenizers/xlmr_unigram_skeleton.json: the same file with the 320 KB charsmap
      left out. Rerunning on another machine may give another model (the training text includes
      files of the local Python installation), hence the committed skeleton.
  VENV/bin/python scripts/make_xlmr_tokenizer.py fuzz-seed OUT_FILE
      the same layout at fuzzing size (a few dozen pieces, a 6-rule charsmap): Fuzz/corpus/tokenizer-json/unigram.
  VENV/bin/python scripts/make_xlmr_tokenizer.py assemble SKELETON OUT_FILE
      (what scripts/fetch-assets runs; needs only sentencepiece==0.2.3) puts SentencePiece's own
      nmt_nfkc charsmap back into the skeleton: the charsmap depends on the rule, not the data.
"""
import glob
import json
import os
import sys
import sysconfig

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A few sentences per script so that every script of the test texts has pieces of its own.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "Transformers turn text into vectors of numbers.",
    "Le vif renard brun saute par-dessus le chien paresseux.", "Où est la bibliothèque ? Elle est fermée le dimanche.",
    "Der schnelle braune Fuchs springt über den faulen Hund.", "Größe, Straße und Mädchen sind deutsche Wörter.",
    "El rápido zorro marrón salta sobre el perro perezoso.", "¿Dónde está la estación? Mañana vamos a Málaga.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.", "Москва — столица России, а Киев — столица Украины.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.", "Αθήνα και Θεσσαλονίκη είναι ελληνικές πόλεις.",
    "敏捷的棕色狐狸跳过了懒狗。", "北京是中国的首都，上海是最大的城市。", "東京は日本の首都です。京都には古いお寺がたくさんあります。",
    "すばやい茶色のキツネがのろまな犬を飛び越えた。", "빠른 갈색 여우가 게으른 개를 뛰어넘었다.", "서울은 대한민국의 수도입니다.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول.", "القاهرة هي عاصمة مصر.", "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "नई दिल्ली भारत की राजधानी है।", "Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.", "Čeština, polski, română și slovenčina.",
    "Ångström, Øresund, Łódź, Dvořák, jalapeño, naïve façade, déjà vu.", "עברית נכתבת מימין לשמאל.",
    "Tiếng Việt có nhiều dấu thanh.", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "Emoji 🙂 and symbols ™ © ½ ① ｆｕｌｌ－ｗｉｄｔｈ ｶﾀｶﾅ.",
]


def training_text():
    parts = []
    for _ in range(3):
        parts.extend(SENTENCES)
    with open(os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                parts.append(o["text"])
                if o.get("pair"):
                    parts.append(o["pair"])
    stdlib = sysconfig.get_paths()["stdlib"]
    # CJK sample texts that CPython ships for its codec tests, when this Python has them.
    for path in sorted(glob.glob(os.path.join(stdlib, "test", "cjkencodings", "*-utf8.txt")))[:8]:
        with open(path, encoding="utf-8", errors="ignore") as f:
            parts.append(f.read()[:20000])
    # English prose: docstrings of a few standard modules.
    for name in ["textwrap", "argparse", "json/__init__", "difflib", "string", "csv", "calendar", "heapq"]:
        with open(os.path.join(stdlib, name + ".py"), encoding="utf-8") as f:
            parts.append(f.read()[:40000])
    return "\n".join(p.replace("\r", "") for p in parts)


class Original:
    """What XLMRobertaConverter reads from the slow tokenizer it converts."""

    def __init__(self, model_file):
        self.vocab_file = model_file
        self.add_prefix_space = True
        self.legacy = True

    def convert_tokens_to_ids(self, token):
        return {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}[token]


PLACEHOLDER = "@nmt_nfkc charsmap: scripts/make_xlmr_tokenizer.py assemble@"
SKELETON = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "xlmr_unigram_skeleton.json")


def read_varint(b, i):
    v = shift = 0
    while True:
        v |= (b[i] & 0x7F) << shift
        shift += 7
        i += 1
        if b[i - 1] < 0x80:
            return v, i


def proto_field(b, number):
    """The bytes of length-delimited field `number` in protobuf message `b` (no protobuf needed)."""
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        kind = key & 7
        if kind == 0:
            _, i = read_varint(b, i)
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        elif kind == 2:
            n, i = read_varint(b, i)
            if key >> 3 == number:
                return b[i:i + n]
            i += n
        else:
            raise ValueError(f"protobuf wire type {kind}")
    raise KeyError(number)


def nmt_nfkc_charsmap():
    """Train a throwaway model: ModelProto.normalizer_spec (3) .precompiled_charsmap (2)."""
    import base64
    import io
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["abc def ghi jkl"] * 20), model_writer=model,
                                   model_type="char", vocab_size=16, normalization_rule_name="nmt_nfkc",
                                   hard_vocab_limit=False, num_threads=1, minloglevel=2)
    return base64.b64encode(proto_field(proto_field(model.getvalue(), 3), 2)).decode("ascii")


def assemble(skeleton, out_file):
    with open(skeleton, encoding="utf-8") as f:
        text = f.read()
    assert text.count(PLACEHOLDER) == 1, f"{skeleton} lacks the charsmap placeholder"
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    with open(out_file + ".part", "w", encoding="utf-8") as f:
        f.write(text.replace(PLACEHOLDER, nmt_nfkc_charsmap()))
    os.replace(out_file + ".part", out_file)


def train(out):
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import XLMRobertaConverter
    os.makedirs(out, exist_ok=True)
    text_path = os.path.join(out, "train.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(training_text())
    prefix = os.path.join(out, "sentencepiece.bpe")
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=prefix, model_type="unigram", vocab_size=2000,
        normalization_rule_name="nmt_nfkc", character_coverage=0.9995, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, seed_sentencepiece_size=200000,
        max_sentence_length=100000, split_by_whitespace=True, minloglevel=2)
    tok = XLMRobertaConverter(Original(prefix + ".model")).converted()
    tok.add_special_tokens([AddedToken(t, special=True) for t in ["<s>", "<pad>", "</s>", "<unk>"]])
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True)])
    full = os.path.join(out, "tokenizer.json")
    tok.save(full)
    with open(full, encoding="utf-8") as f:
        text = f.read()
    charsmap = json.loads(text)["normalizer"]["normalizers"][0]["precompiled_charsmap"]
    assert charsmap == nmt_nfkc_charsmap(), "the trained model's charsmap is not SentencePiece's nmt_nfkc"
    with open(SKELETON, "w", encoding="utf-8") as f:
        f.write(text.replace(charsmap, PLACEHOLDER))
    assemble(SKELETON, full + ".check")
    with open(full + ".check", encoding="utf-8") as f:
        assert f.read() == text, "assembling the skeleton does not give the trained file back"
    print(f"{full}: {tok.get_vocab_size()} pieces, {len(text)} bytes; skeleton {os.path.getsize(SKELETON)} bytes")


def fuzz_seed(out_file):
    import tempfile
    from transformers.convert_slow_tokenizer import XLMRobertaConverter
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "rules.tsv")
        with open(rules, "w", encoding="utf-8") as f:  # source code points <TAB> target code points
            f.write("FB01\t66 69\nFF21\t41\n65 301\tE9\n3000\t20\n2122\t54 4D\n1E\t\n")
        text = ["the fine cat sat on the mat", "ﬁne café ＡＢ ™ done", "hello world hello there"] * 30
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_prefix=os.path.join(tmp, "m"),
                                       model_type="unigram", vocab_size=40, hard_vocab_limit=False,
                                       normalization_rule_tsv=rules, num_threads=1, minloglevel=2)
        tok = XLMRobertaConverter(Original(os.path.join(tmp, "m.model"))).converted()
        tok.save(out_file)
    print(f"{out_file}: {tok.get_vocab_size()} pieces, {os.path.getsize(out_file)} bytes")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "train":
        train(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "fuzz-seed":
        fuzz_seed(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "assemble":
        assemble(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
