# Fake-quant simulation (f64, PyTorch) of weight-only int8 with one symmetric scale per group of G input channels
# per output channel (G = 32, 64, 128, or the whole row: "ch", per channel) on all-MiniLM-L6-v2, beside the
# attention-output projection in dynamic int8 (u7 activations per token, 7-bit per-channel weights: the AVX2
# default scheme, see CPUPrecision.int8). Prints one line per configuration: its label and the min cosine, over
# the fixture texts, of the mean-pooled normalized embedding against f64 unquantized weights. It chose the
# encoders' int8 formats (QKV, FFN-in, FFN-out weight-only g64: contract cos >= 0.999).
# Usage (from the repository root): VENV=/work/main/.cache/venv-torch; $VENV/bin/python scripts/int8_group_sim.py
#   [assets dir, default .cache/assets/all-MiniLM-L6-v2]  (~1 minute on 1 thread).
import json, sys, torch
from transformers import AutoTokenizer, AutoModel
torch.set_num_threads(1)
D = sys.argv[1] if len(sys.argv) > 1 else '.cache/assets/all-MiniLM-L6-v2'
texts = json.load(open('Tests/Fixtures/bert/minilm_expected.json'))['texts']
tok = AutoTokenizer.from_pretrained(D); model = AutoModel.from_pretrained(D).double().eval()
enc = tok(texts, padding=True, return_tensors='pt')
def embed(e=enc):
    with torch.no_grad(): h = model(**e).last_hidden_state
    m = e['attention_mask'].unsqueeze(-1).double(); v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1)
ref = embed()
linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
orig = {n: m.weight.data.clone() for n, m in linears.items()}
kind = lambda n: ('attn-out' if n.endswith('attention.output.dense') else 'ffn-out' if n.endswith('output.dense') else
                  'ffn-in' if n.endswith('intermediate.dense') else 'qkv' if n.split('.')[-1] in ('query','key','value') else 'other')
def bf16(w): return w.float().bfloat16().double()
def qw_group(w, g, qmax=127):
    """Symmetric per (output channel, group of g input channels); a last partial group when k % g != 0."""
    o, k = w.shape; g = k if g is None else g
    pad = (-k) % g
    wp = torch.nn.functional.pad(w, (0, pad)).reshape(o, (k + pad) // g, g)
    s = wp.abs().amax(-1, keepdim=True) / qmax; s[s == 0] = 1
    return (torch.round(wp / s).clamp(-qmax, qmax) * s).reshape(o, k + pad)[:, :k]
def qa_u7(x):
    Q = 127; lo = x.amin(-1, keepdim=True).clamp(max=0); hi = x.amax(-1, keepdim=True).clamp(min=0); s = (hi - lo) / Q; s[s == 0] = 1
    z = torch.round(-lo / s); return (torch.round(x / s) + z).clamp(0, Q).sub(z) * s
def run(label, cfg):
    hooks = []
    for n, mod in linears.items():
        k = kind(n); c = cfg.get(k, 'f32'); w = orig[n]
        if c == 'f32': mod.weight.data = w.clone()
        elif c == 'bf16': mod.weight.data = bf16(w)
        elif c.startswith('w8g'): g = c[3:]; mod.weight.data = qw_group(w, None if g == 'ch' else int(g))
        elif c == 'dyn': mod.weight.data = qw_group(w, None, 63); hooks.append(mod.register_forward_pre_hook(lambda m, i: (qa_u7(i[0]),)))
    e = embed(); [h.remove() for h in hooks]
    cos = (e * ref).sum(-1)
    print(f'{label:40s} min cos {cos.min().item():.6f}', flush=True)
run('previous: attn-out dyn, rest bf16', {'attn-out': 'dyn', 'qkv': 'bf16', 'ffn-in': 'bf16', 'ffn-out': 'bf16'})
for g in ['ch', '128', '64', '32']:
    run(f'all w8g{g} weight-only', {k: 'w8g' + g for k in ['attn-out', 'qkv', 'ffn-in', 'ffn-out']})
    run(f'attn-out dyn, rest w8g{g}', {'attn-out': 'dyn', 'qkv': 'w8g' + g, 'ffn-in': 'w8g' + g, 'ffn-out': 'w8g' + g})
    for only in ['qkv', 'ffn-in', 'ffn-out']:
        cfg = {'attn-out': 'dyn', 'qkv': 'bf16', 'ffn-in': 'bf16', 'ffn-out': 'bf16'}; cfg[only] = 'w8g' + g
        run(f'attn-out dyn, {only} w8g{g}, rest bf16', cfg)
run('attn dyn, qkv+ffn-in ch, ffn-out g64', {'attn-out': 'dyn', 'qkv': 'w8gch', 'ffn-in': 'w8gch', 'ffn-out': 'w8g64'})
run('attn dyn, qkv ch, ffn-in+out g64', {'attn-out': 'dyn', 'qkv': 'w8gch', 'ffn-in': 'w8g64', 'ffn-out': 'w8g64'})
