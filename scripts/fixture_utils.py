"""Helpers shared by the fixture generators (scripts/gen_*_fixtures.py): rounding reference outputs and
giving a freshly initialized HF model distinctive tensors. Changing either changes every committed fixture."""
import torch


def rnd(x, digits=8):
    """nested dicts/lists of floats rounded to `digits` significant digits"""
    if isinstance(x, dict):
        return {k: rnd(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [rnd(v, digits) for v in x]
    return float(f"{x:.{digits - 1}e}")


def is_encoder_norm(name):
    """BERT-family LayerNorm parameter names (HF spells them LayerNorm or layer_norm)"""
    return "LayerNorm" in name or "layer_norm" in name


def perturb(model, seed, is_norm=is_encoder_norm):
    """HF init leaves biases at 0 and norms at (1, 0); make every tensor distinctive: norm weights 1 + 0.2 N(0, 1),
    norm parameters and biases 0.2 N(0, 1), one draw per parameter in named_parameters() order (so the stream of
    random numbers, and the fixtures, depend on that order)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if is_norm(name) and name.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            elif name.endswith("bias") or is_norm(name):
                p.copy_(0.2 * noise)
