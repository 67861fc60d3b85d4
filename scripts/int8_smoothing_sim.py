# Fake-quant simulation (f64) of dynamic int8 with SmoothQuant-style per-input-channel smoothing on
# all-MiniLM-L6-v2: min cosine of the mean-pooled normalized embedding vs f32 over the fixture texts.
# Usage: python scripts/int8_smoothing_sim.py [assets dir] (VENV=/work/main/.cache/venv-torch).
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
groups = {'attn-out': lambda n: n.endswith('attention.output.dense'),
          'ffn-out': lambda n: n.endswith('output.dense') and 'attention' not in n,
          'ffn-in': lambda n: n.endswith('intermediate.dense'),
          'qkv': lambda n: any(n.endswith(x) for x in ('query', 'key', 'value'))}
# Calibration: per-input-channel max |x| of every linear layer's input over inputs that are NOT the fixtures.
def calibrate(batch_ids, mask):
    amax = {}
    hooks = [m.register_forward_pre_hook(lambda m, i, n=n: amax.__setitem__(n, torch.maximum(amax.get(n, torch.zeros(i[0].shape[-1], dtype=torch.float64)),
             i[0].abs().reshape(-1, i[0].shape[-1]).amax(0)))) for n, m in linears.items()]
    with torch.no_grad(): model(input_ids=batch_ids, attention_mask=mask)
    for h in hooks: h.remove()
    return amax
calib_texts = ['The quick brown fox jumps over the lazy dog.', 'Calibration runs once when the plan is prepared.',
               'What is the capital of France?', 'Prices rose 3.5% in 2024, according to the report.']
ce = tok(calib_texts, padding=True, return_tensors='pt')
amax_text = calibrate(ce['input_ids'], ce['attention_mask'])
g = torch.Generator().manual_seed(1)
# Synthetic calibration (what a backend without a tokenizer can run): [CLS] random word ids [SEP].
def synth(seq, rows):
    ids = torch.randint(1000, tok.vocab_size, (rows, seq), generator=g); ids[:, 0] = tok.cls_token_id; ids[:, -1] = tok.sep_token_id
    return ids, torch.ones_like(ids)
ids, m = synth(32, 4)
amax_synth = calibrate(ids, m)
def qw(w, qmax):
    s = w.abs().amax(1, keepdim=True) / qmax; s[s == 0] = 1; return torch.round(w / s).clamp(-qmax, qmax) * s
def qa(x, scheme):
    if scheme == 's8s8':
        s = x.abs().amax(-1, keepdim=True) / 127; s[s == 0] = 1; return torch.round(x / s).clamp(-127, 127) * s
    Q = 255 if scheme == 'u8s7' else 127
    lo = x.amin(-1, keepdim=True).clamp(max=0); hi = x.amax(-1, keepdim=True).clamp(min=0); s = (hi - lo) / Q; s[s == 0] = 1
    z = torch.round(-lo / s); return (torch.round(x / s) + z).clamp(0, Q).sub(z) * s
WQ = {'s8s8': 127, 'u8s7': 63, 'u7s7': 63}
def apply(scheme, which, alpha, amax):
    hooks = []
    for n, mod in linears.items():
        mod.weight.data = orig[n].clone()
        if not which(n): continue
        w = orig[n]
        if alpha is None: s = torch.ones(w.shape[1], dtype=torch.float64)
        else:
            s = amax[n].clamp(min=1e-5) ** alpha / w.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)
            s = 2.0 ** torch.round(torch.log2(s)) if round_pow2 else s
        mod.weight.data = qw(w * s, WQ[scheme]) / s  # smoothed W quantized per output channel
        hooks.append(mod.register_forward_pre_hook(lambda m, inp, sc=scheme, s=s: (qa(inp[0] / s, sc) * s,)))
    return hooks
round_pow2 = False
def run(label, scheme, which, alpha, amax):
    hs = apply(scheme, which, alpha, amax); e = embed(); [h.remove() for h in hs]
    cos = (e * ref).sum(-1)
    print(f'{label:34s} {scheme}: min cos {cos.min().item():.6f} per text {[round(c, 5) for c in cos.tolist()]}', flush=True)
    return cos.min().item()
everything = lambda n: True
for scheme in ['u7s7', 'u8s7', 's8s8']:
    run('all, no smoothing', scheme, everything, None, None)
    for alpha in [0.4, 0.5, 0.6, 0.7, 0.8]:
        run(f'all, alpha {alpha} (text calib)', scheme, everything, alpha, amax_text)
    for alpha in [0.5, 0.6, 0.7]:
        run(f'all, alpha {alpha} (synthetic calib)', scheme, everything, alpha, amax_synth)
    for gname, gf in groups.items():
        run(f'{gname}, alpha 0.5 (synthetic)', scheme, gf, 0.5, amax_synth)
