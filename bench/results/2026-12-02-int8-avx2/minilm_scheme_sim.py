# Fake-quant simulation of the dynamic int8 schemes on all-MiniLM-L6-v2 (f64 math of the quantized values).
import json, torch, sys
from transformers import AutoTokenizer, AutoModel
torch.set_num_threads(1)
D='/work/wt-13b/.cache/assets/all-MiniLM-L6-v2'
texts=json.load(open('/work/wt-13b/Tests/Fixtures/bert/minilm_expected.json'))['texts']
tok=AutoTokenizer.from_pretrained(D); model=AutoModel.from_pretrained(D).double().eval()
enc=tok(texts,padding=True,return_tensors='pt')
def embed():
    with torch.no_grad(): h=model(**enc).last_hidden_state
    m=enc['attention_mask'].unsqueeze(-1).double(); e=(h*m).sum(1)/m.sum(1); return torch.nn.functional.normalize(e,dim=-1)
ref=embed()
def qw(w,qmax):
    s=w.abs().amax(1,keepdim=True)/qmax; return torch.round(w/s).clamp(-qmax,qmax)*s
def qa(x,scheme):
    if scheme=='s8s8':
        s=x.abs().amax(-1,keepdim=True)/127; s[s==0]=1; return torch.round(x/s).clamp(-127,127)*s
    Q=255 if scheme=='u8s7' else 127
    lo=x.amin(-1,keepdim=True).clamp(max=0); hi=x.amax(-1,keepdim=True).clamp(min=0); s=(hi-lo)/Q; s[s==0]=1
    z=torch.round(-lo/s); return (torch.round(x/s)+z).clamp(0,Q).sub(z)*s
WQ={'s8s8':127,'u8s7':63,'u7s8':127,'u7s7':63}
orig={}
for name,mod in model.named_modules():
    if isinstance(mod,torch.nn.Linear): orig[name]=mod.weight.data.clone()
def apply(scheme,which):
    hooks=[]
    for name,mod in model.named_modules():
        if not isinstance(mod,torch.nn.Linear): continue
        mod.weight.data=orig[name].clone()
        if scheme and which(name):
            mod.weight.data=qw(orig[name],WQ[scheme])
            hooks.append(mod.register_forward_pre_hook(lambda m,inp,s=scheme:(qa(inp[0],s),)))
    return hooks
sets={'attn-out':lambda n:n.endswith('attention.output.dense'),
      'ffn-out':lambda n:n.endswith('output.dense') and 'attention' not in n,
      'ffn-in':lambda n:n.endswith('intermediate.dense'),
      'qkv':lambda n:any(n.endswith(x) for x in ('query','key','value')),
      'all':lambda n:True}
for which in sys.argv[1:]:
    for scheme in ['s8s8','u8s7','u7s8','u7s7']:
        hs=apply(scheme,sets[which]); e=embed(); [h.remove() for h in hs]
        cos=(e*ref).sum(-1)
        print(f"{which:9s} {scheme}: min cos {cos.min().item():.6f}  per text {[round(c,5) for c in cos.tolist()]}",flush=True)
