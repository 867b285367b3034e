#!/usr/bin/env python3
"""Step sizes of a learned optimizer (or Adam) over 4,000 steps of a torch.nn MLP 784-20-10 ReLU on
MNIST (batch 128, torch's default init): full-batch loss on 10,000 images, the norm of each step and,
for the HierarchicalRNN, the spread of its per-coordinate log learning rates.

    /usr/bin/python3 scripts/hrnn_step_sizes.py checkpoints/hrnn_generalist.pt
    /usr/bin/python3 scripts/hrnn_step_sizes.py adam
    /usr/bin/python3 scripts/hrnn_step_sizes.py checkpoints/hrnn_generalist.pt max_log_lr=-3   (saved options overridden)

Needs the built Python module (build/python, or L2O_PYTHON_DIR) and data/mnist.
"""
import os, sys, gzip, struct, numpy as np, torch
sys.path.insert(0, os.environ.get('L2O_PYTHON_DIR', os.path.join(os.path.dirname(__file__), '..', 'build', 'python')))
import l2o, l2o.optim
def idx(path):
    op = gzip.open if path.endswith('.gz') else open
    with op(path, 'rb') as f:
        magic = struct.unpack('>I', f.read(4))[0]; nd = magic & 0xff
        dims = struct.unpack('>' + 'I'*nd, f.read(4*nd))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)
import glob
d=os.path.join(os.path.dirname(__file__), '..', 'data', 'mnist') + '/'
xi=[p for p in glob.glob(d+'*') if 'train' in p and 'images' in p.replace('-idx3','images')][0]
yi=[p for p in glob.glob(d+'*') if 'train' in p and 'labels' in p.replace('-idx1','labels')][0]
X=torch.tensor(idx(xi).reshape(-1,784)/255.0, dtype=torch.float32); Y=torch.tensor(idx(yi).astype(np.int64))
torch.manual_seed(0)
model=torch.nn.Sequential(torch.nn.Linear(784,20), torch.nn.ReLU(), torch.nn.Linear(20,10))
ck=sys.argv[1]
opt=l2o.optim.Learned(model.parameters(), ck, sys.argv[2] if len(sys.argv) > 2 else '') if ck!='adam' else torch.optim.Adam(model.parameters(), lr=1e-3)
g=torch.Generator().manual_seed(1)
for t in range(1, 4001):
    idxs=torch.randint(0, X.shape[0], (128,), generator=g)
    before=[p.detach().clone() for p in model.parameters()]
    loss=torch.nn.functional.cross_entropy(model(X[idxs]), Y[idxs])
    opt.zero_grad(); loss.backward(); opt.step()
    if t in (1,10,100,300,1000,2000,3000,4000):
        step=sum(((p.detach()-b)**2).sum() for p,b in zip(model.parameters(), before)).sqrt().item()
        extra=''
        if ck!='adam':
            sl=opt.state_dict()['state']['slots']
            ll=torch.cat([x.flatten() for x in sl['log_lr']])
            extra=' log_lr mean %.2f min %.2f max %.2f, <-20: %.1f%%, >-5: %.1f%%' % (
                ll.mean(), ll.min(), ll.max(), 100*(ll < -20).float().mean(), 100*(ll > -5).float().mean())
        with torch.no_grad(): full=torch.nn.functional.cross_entropy(model(X[:10000]), Y[:10000]).item()
        print('step %5d loss(10k) %.3f |dtheta| %.2e%s' % (t, full, step, extra), flush=True)
