#!/usr/bin/env python3
"""gen_encoder_fixtures.py: reference outputs for Flint's DistilBERT, RoBERTa and XLM-RoBERTa encoders, from HF
transformers (the BERT ones: gen_bert_fixtures.py, same expected.json format).

Writes Tests/Fixtures/encoders/tiny-<family>-<head>/ (deterministic: fixed seeds and inputs): tiny random models
(hidden 32, 2 layers, vocab 99) of each family and head, save_pretrained(safe_serialization=True), each with
expected.json: {"architecture", "weights_dtype", "inputs": {"input_ids", "token_type_ids"},
"outputs": {"last_hidden_state", ["pooler_output"], [head outputs]}}. 3 sequences (5, 12, 9 tokens) run as ONE
right-padded batch (the config's pad id) with an attention mask; outputs cover real tokens only; 8 significant digits.
Token types are all 0 (RoBERTa has one type, DistilBERT none). RoBERTa/XLM-R positions start at pad_token_id + 1
(create_position_ids_from_input_ids); inputs avoid the pad id. tiny-distilbert-sinusoidal: sinusoidal_pos_embds
with the position table removed from the checkpoint (loaders must make the sinusoid).
Run: VENV=/work/main/.cache/venv-torch; $VENV/bin/python scripts/gen_encoder_fixtures.py
"""
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
import transformers
from fixture_utils import perturb, rnd
from safetensors.torch import load_file, save_file
from transformers import (DistilBertConfig, DistilBertForQuestionAnswering, DistilBertForSequenceClassification,
                          DistilBertForTokenClassification, DistilBertModel, RobertaConfig, RobertaForQuestionAnswering,
                          RobertaForSequenceClassification, RobertaForTokenClassification, RobertaModel, XLMRobertaConfig,
                          XLMRobertaForQuestionAnswering, XLMRobertaForSequenceClassification,
                          XLMRobertaForTokenClassification, XLMRobertaModel)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "encoders")
torch.set_num_threads(1)
transformers.utils.logging.disable_progress_bar()

VOCAB = 99
LENS = [5, 12, 9]
ROBERTA = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=VOCAB,
               max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, hidden_act="gelu",
               initializer_range=0.2, pad_token_id=1, bos_token_id=0, eos_token_id=2)
DISTILBERT = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=VOCAB, max_position_embeddings=64,
                  activation="gelu", initializer_range=0.2, pad_token_id=0)
HEADS = [("model", "Model"), ("seqcls", "ForSequenceClassification"), ("tokcls", "ForTokenClassification"),
         ("qa", "ForQuestionAnswering")]
FAMILIES = {
    "distilbert": (DistilBertConfig, DISTILBERT, {"Model": DistilBertModel, "ForSequenceClassification": DistilBertForSequenceClassification,
                                                  "ForTokenClassification": DistilBertForTokenClassification,
                                                  "ForQuestionAnswering": DistilBertForQuestionAnswering}),
    "roberta": (RobertaConfig, ROBERTA, {"Model": RobertaModel, "ForSequenceClassification": RobertaForSequenceClassification,
                                         "ForTokenClassification": RobertaForTokenClassification,
                                         "ForQuestionAnswering": RobertaForQuestionAnswering}),
    "xlm-roberta": (XLMRobertaConfig, ROBERTA, {"Model": XLMRobertaModel, "ForSequenceClassification": XLMRobertaForSequenceClassification,
                                                "ForTokenClassification": XLMRobertaForTokenClassification,
                                                "ForQuestionAnswering": XLMRobertaForQuestionAnswering}),
}
HEAD_EXTRA = {"seqcls": {"num_labels": 3}, "tokcls": {"num_labels": 5}}


def tiny_ids():
    g = torch.Generator().manual_seed(4321)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in LENS]  # 0..2: pad ids of every family


def run(model, ids, pad):
    L = max(map(len, ids))
    input_ids = torch.tensor([r + [pad] * (L - len(r)) for r in ids])
    mask = torch.tensor([[1] * len(r) + [0] * (L - len(r)) for r in ids])
    base = getattr(model, model.base_model_prefix, model)
    with torch.no_grad():
        b = base(input_ids=input_ids, attention_mask=mask)
        out = {"last_hidden_state": [b.last_hidden_state[i, :n].tolist() for i, n in enumerate(LENS)]}
        if getattr(b, "pooler_output", None) is not None:
            out["pooler_output"] = b.pooler_output.tolist()
        if base is not model:
            h = model(input_ids=input_ids, attention_mask=mask)
            if hasattr(h, "start_logits"):
                out["start_logits"] = [h.start_logits[i, :n].tolist() for i, n in enumerate(LENS)]
                out["end_logits"] = [h.end_logits[i, :n].tolist() for i, n in enumerate(LENS)]
            elif h.logits.dim() == 2:
                out["logits"] = h.logits.tolist()
            else:
                out["logits"] = [h.logits[i, :n].tolist() for i, n in enumerate(LENS)]
    return out


def max_diff(a, b):
    if isinstance(a, list):
        return max(max_diff(x, y) for x, y in zip(a, b)) if len(a) == len(b) else float("inf")
    return abs(a - b)


def reload(cls, cfg, d):
    ref = cls(cfg).eval()
    sd = load_file(os.path.join(d, "model.safetensors"))
    missing, unexpected = ref.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    return ref, missing


def gen():
    shutil.rmtree(OUT, ignore_errors=True)
    ids = tiny_ids()
    specs = [(fam, short, suffix, {}) for fam in FAMILIES for short, suffix in HEADS]
    specs.append(("distilbert", "sinusoidal", "Model", {"sinusoidal_pos_embds": True}))
    for k, (fam, short, suffix, extra) in enumerate(specs):
        config_cls, base_cfg, classes = FAMILIES[fam]
        cls = classes[suffix]
        d = os.path.join(OUT, f"tiny-{fam}-{short}")
        cfg = config_cls(**{**base_cfg, **HEAD_EXTRA.get(short, {}), **extra})
        cfg._attn_implementation = "eager"
        torch.manual_seed(300 + k)
        model = cls(cfg).eval()
        perturb(model, 400 + k)
        if extra.get("sinusoidal_pos_embds"):
            # what the config promises (transformers' create_sinusoidal_embeddings), then left out of the file
            n, dim = cfg.max_position_embeddings, cfg.dim
            import numpy as np
            enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n)])
            table = torch.zeros(n, dim)
            table[:, 0::2] = torch.FloatTensor(np.sin(enc[:, 0::2]))
            table[:, 1::2] = torch.FloatTensor(np.cos(enc[:, 1::2]))
            with torch.no_grad():
                model.embeddings.position_embeddings.weight.copy_(table)
        model.save_pretrained(d, safe_serialization=True)
        if extra.get("sinusoidal_pos_embds"):
            path = os.path.join(d, "model.safetensors")
            sd = load_file(path)
            del sd["embeddings.position_embeddings.weight"]
            save_file(sd, path, metadata={"format": "pt"})
        ref, missing = reload(cls, cfg, d)
        if extra.get("sinusoidal_pos_embds"):
            assert missing == ["embeddings.position_embeddings.weight"], missing
            with torch.no_grad():
                ref.embeddings.position_embeddings.weight.copy_(table)
        else:
            assert not missing, missing
        pad = cfg.pad_token_id
        out = run(ref, ids, pad)
        exp = {"architecture": cls.__name__, "weights_dtype": "float32",
               "inputs": {"input_ids": ids, "token_type_ids": [[0] * n for n in LENS]}, "outputs": rnd(out, 8)}
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f, separators=(",", ":"))
        if not extra:
            back = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
            diff = max(max_diff(v, exp["outputs"][n]) for n, v in run(back, ids, pad).items())
            assert diff < 1e-5, (d, diff)
        print("wrote", d)


if __name__ == "__main__":
    gen()
