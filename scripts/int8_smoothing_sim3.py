# Third pass: what Flint implements: QKV smoothed by the LayerNorm estimate (c=1 and 3) in s8s8 or
# u8s7, with the attention output projection unsmoothed in u7s7 (the AVX2 default), together.
import sys, torch
exec(open('scripts/int8_smoothing_sim2.py').read().split('qkv, ffnin, attnout =')[0])
def mixed(label, parts):
    hooks = []
    for n, mod in linears.items(): mod.weight.data = orig[n].clone()
    for which, scheme, amax in parts:
        for n, mod in linears.items():
            if not which(n): continue
            w = orig[n]
            s = torch.ones(w.shape[1], dtype=torch.float64) if amax is None else \
                amax[n].clamp(min=1e-5) ** 0.5 / w.abs().amax(0).clamp(min=1e-5) ** 0.5
            mod.weight.data = qw(w * s, WQ[scheme]) / s
            hooks.append(mod.register_forward_pre_hook(lambda m, inp, sc=scheme, s=s: (qa(inp[0] / s, sc) * s,)))
    e = embed(); [h.remove() for h in hooks]
    cos = (e * ref).sum(-1)
    print(f'{label:44s}: min cos {cos.min().item():.6f} per text {[round(c, 5) for c in cos.tolist()]}', flush=True)
qkv, attnout = groups['qkv'], groups['attn-out']
for c in [1.0, 3.0]:
    est = ln_estimate(c)
    mixed(f'qkv s8s8 LN c={c} alone', [(qkv, 's8s8', est)])
    mixed(f'qkv s8s8 LN c={c} + attn-out u7s7', [(qkv, 's8s8', est), (attnout, 'u7s7', None)])
    mixed(f'qkv u8s7 LN c={c} + attn-out u7s7', [(qkv, 'u8s7', est), (attnout, 'u7s7', None)])
