#!/usr/bin/env python3
"""Build the Hugging Face GPT-2 tokenizer.json from vocab.json + merges.txt.

Mirrors the hub's gpt2 tokenizer.json (what transformers' GPT2TokenizerFast
produces): byte-level BPE without unk/dropout/prefixes, ByteLevel pre-tokenizer
(add_prefix_space=False, trim_offsets=True, use_regex=True), ByteLevel
post-processor (trim_offsets=False), ByteLevel decoder and `<|endoftext|>`
(id 50256) as a special added token.

--roberta writes RoBERTa's layout instead (what transformers' RobertaTokenizerFast produces, on
GPT-2's vocabulary): <s> </s> <pad> <unk> added as special tokens, <mask> with lstrip, a ByteLevel
pre-tokenizer and decoder, and the RobertaProcessing post-processor (<s> A </s> </s> B </s>, byte-level
offsets trimmed).

usage: make_gpt2_tokenizer_json.py OUT.json [--vocab vocab.json] [--merges merges.txt] [--roberta]
(vocab/merges default to the files next to OUT.json)
"""
import argparse
import os

from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE

EOT = "<|endoftext|>"


def build(vocab, merges):
    # defaults: no unk, no dropout, no continuing prefix / end-of-word suffix
    tok = Tokenizer(BPE.from_file(vocab, merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                                 use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(EOT, special=True, normalized=True,
                                       lstrip=False, rstrip=False, single_word=False)])
    assert tok.token_to_id(EOT) == 50256, tok.token_to_id(EOT)
    return tok


def build_roberta(vocab, merges):
    tok = Tokenizer(BPE.from_file(vocab, merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t in ("<s>", "</s>", "<pad>", "<unk>")]
    tok.add_special_tokens(specials + [AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=False)
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--vocab")
    ap.add_argument("--merges")
    ap.add_argument("--roberta", action="store_true")
    a = ap.parse_args()
    d = os.path.dirname(os.path.abspath(a.out))
    tok = (build_roberta if a.roberta else build)(a.vocab or os.path.join(d, "vocab.json"), a.merges or os.path.join(d, "merges.txt"))
    tok.save(a.out)
    print(f"wrote {a.out} (vocab {tok.get_vocab_size()})")


if __name__ == "__main__":
    main()
