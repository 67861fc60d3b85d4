# Second pass: calibration-free smoothing for LayerNorm-fed layers (QKV, FFN-in): max|x_j| estimated as
# c·|gamma_j| + |beta_j| from the LayerNorm that feeds the layer; combined layer sets.
import sys, torch
sys.argv = sys.argv[:1]
exec(open('scripts/int8_smoothing_sim.py').read().split('everything = lambda n: True')[0])
def ln_estimate(c):
    est = {}
    for i, layer in enumerate(model.encoder.layer):
        prev = model.embeddings.LayerNorm if i == 0 else model.encoder.layer[i - 1].output.LayerNorm
        for n in ('query', 'key', 'value'):
            est[f'encoder.layer.{i}.attention.self.{n}'] = c * prev.weight.data.abs() + prev.bias.data.abs()
        ln = layer.attention.output.LayerNorm
        est[f'encoder.layer.{i}.intermediate.dense'] = c * ln.weight.data.abs() + ln.bias.data.abs()
    return est
qkv, ffnin, attnout = groups['qkv'], groups['ffn-in'], groups['attn-out']
for c in [1.0, 3.0]:
    est = ln_estimate(c)
    for scheme in ['u7s7', 'u8s7']:
        run(f'qkv, LN estimate c={c}', scheme, qkv, 0.5, est)
for scheme in ['u7s7', 'u8s7']:
    run('qkv+attn-out, synthetic a0.5', scheme, lambda n: qkv(n) or attnout(n), 0.5, amax_synth)
run('qkv+ffn-in+attn-out, synthetic', 'u8s7', lambda n: qkv(n) or attnout(n) or ffnin(n), 0.5, amax_synth)
