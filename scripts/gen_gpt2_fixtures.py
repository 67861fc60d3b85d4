#!/usr/bin/env python3
"""gen_gpt2_fixtures.py: reference outputs for Flint's GPT-2 tests, from HF transformers.

Writes Tests/Fixtures/gpt2/<name>/ (deterministic: fixed seeds and inputs), each a tiny random GPT-2
saved with save_pretrained(safe_serialization=True) plus expected.json:
  {"architecture", "weights_dtype", "prompts": [[ids], ...],
   "logits" (LM models) or "last_hidden_state" (GPT2Model): per prompt [len][vocab|hidden], each prompt
   run alone (no padding), floats to 8 significant digits,
   "greedy": per prompt the 64 token ids transformers' generate picks (do_sample=False, no EOS stop),
   "min_margin": the smallest top-1 minus top-2 logit gap met along those greedy paths}
Models (all tiny, so they stay small in git; vocabularies are small, prompts are token ids):
  tiny-gpt2         GPT2LMHeadModel, n_embd 48, 4 heads (head dim 12), 2 layers, tied LM head, gelu_new
  tiny-gpt2-hd40    head dim 40, 2 layers, n_inner 120, untied lm_head.weight, activation "gelu",
                    scale_attn_by_inverse_layer_idx
  tiny-gpt2-hd128   one head of 128, 1 layer
  tiny-gpt2-fp16 / tiny-gpt2-bf16   tiny-gpt2's shape saved in float16 / bfloat16 (expected outputs
                    from the rounded weights, computed in float32)
  tiny-gpt2-model   GPT2Model (1 layer): keys without "transformer.", last_hidden_state only
Init: HF's init with initializer_range 0.2, then every bias and LayerNorm perturbed, so that logits are
far from uniform and greedy paths have clear margins.
Run: .cache/venv-torch/bin/python scripts/gen_gpt2_fixtures.py   (venv: scripts/setup-torch-venv)
"""
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
import transformers
from fixture_utils import perturb, rnd
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "gpt2")
torch.set_num_threads(1)  # reproducible reductions
transformers.utils.logging.disable_progress_bar()

TINY = dict(vocab_size=320, n_positions=128, n_embd=48, n_layer=2, n_head=4, initializer_range=0.2,
            bos_token_id=319, eos_token_id=319)
SPECS = [  # folder, class, config overrides, weights dtype
    ("tiny-gpt2", GPT2LMHeadModel, {}, torch.float32),
    ("tiny-gpt2-hd40", GPT2LMHeadModel, dict(vocab_size=300, n_embd=80, n_head=2, n_inner=120, activation_function="gelu",
                                            tie_word_embeddings=False, scale_attn_by_inverse_layer_idx=True,
                                            bos_token_id=299, eos_token_id=299), torch.float32),
    ("tiny-gpt2-hd128", GPT2LMHeadModel, dict(vocab_size=200, n_embd=128, n_head=1, n_layer=1, n_inner=64,
                                             bos_token_id=199, eos_token_id=199), torch.float32),
    ("tiny-gpt2-fp16", GPT2LMHeadModel, {}, torch.float16),
    ("tiny-gpt2-bf16", GPT2LMHeadModel, {}, torch.bfloat16),
    ("tiny-gpt2-model", GPT2Model, dict(n_layer=1), torch.float32),
]
DTYPE_NAME = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
LENS = [5, 11, 8]
NEW_TOKENS = 64


def load_saved(cls, cfg, folder):
    """the model from the *saved* tensors (fp16/bf16 rounded), upcast to float32"""
    ref = cls(cfg).eval()
    sd = {}
    for f in os.listdir(folder):
        if f.endswith(".safetensors"):
            sd.update({n: t.float() for n, t in load_file(os.path.join(folder, f)).items()})
    missing, unexpected = ref.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(m == "lm_head.weight" for m in missing), missing  # tied: absent from the file
    ref.tie_weights()
    return ref


def main():
    for k, (folder, cls, extra, dtype) in enumerate(SPECS):
        d = os.path.join(OUT, folder)
        shutil.rmtree(d, ignore_errors=True)
        cfg = GPT2Config(**{**TINY, **extra})
        cfg._attn_implementation = "eager"
        torch.manual_seed(300 + k)
        model = cls(cfg).eval()
        perturb(model, 400 + k, is_norm=lambda name: ".ln_" in name)
        model.to(dtype).save_pretrained(d, safe_serialization=True)
        for extra_file in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra_file)):
                os.remove(os.path.join(d, extra_file))
        ref = load_saved(cls, cfg, d)
        g = torch.Generator().manual_seed(77)
        prompts = [torch.randint(0, cfg.vocab_size - 1, (n,), generator=g).tolist() for n in LENS]
        exp = {"architecture": cls.__name__, "weights_dtype": DTYPE_NAME[dtype], "prompts": prompts}
        with torch.no_grad():
            if cls is GPT2Model:
                exp["last_hidden_state"] = [rnd(ref(torch.tensor([p])).last_hidden_state[0].tolist()) for p in prompts]
            else:
                exp["logits"] = [rnd(ref(torch.tensor([p])).logits[0].tolist()) for p in prompts]
                greedy, margin = [], float("inf")
                for p in prompts:
                    out = ref.generate(torch.tensor([p]), max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None,
                                       pad_token_id=0, output_scores=True, return_dict_in_generate=True)
                    greedy.append(out.sequences[0, len(p):].tolist())
                    for s in out.scores:
                        top = torch.topk(s[0], 2).values
                        margin = min(margin, float(top[0] - top[1]))
                exp["greedy"] = greedy
                exp["min_margin"] = margin
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f, separators=(",", ":"))
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{folder:16s} {cls.__name__:16s} {DTYPE_NAME[dtype]:8s} {sorted(os.listdir(d))} {size / 1024:.0f} KiB"
              + (f" greedy min margin {exp['min_margin']:.2e}" if "min_margin" in exp else ""))


if __name__ == "__main__":
    main()
