#!/usr/bin/env python3
"""torch_rwkv7.py -- the PyTorch eager peer of `rwkvlab bench` (issue 12): a plain RWKV-7 (x070) written
from ../shared/spec/rwkv7.md, trained with autograd and torch.optim.AdamW, timed the way bench.c times
ours (one warm-up step, then full steps: forward, loss, backward, gradient clipping, AdamW).

This is what a researcher would write without a custom kernel: the WKV recurrence is a Python loop over
time with batched tensor ops over (B, H). Same sizes, vocabulary, LoRA ranks, random tokens and optimizer
settings as bench.c; the threads are set with torch.set_num_threads.

  python3 tests/bench/torch_rwkv7.py --layers 2 --d-model 128 --head-size 32 --batch 64 --T 128 \
      --vocab 120 --ranks 32,32,32,64 --threads 2 --steps 3      # prints one JSON line
  python3 tests/bench/torch_rwkv7.py --verify model.pth --tokens 0,5,7 --ref logits.npy
      # the same forward on an exported rwkvlab model: max |diff| against `rwkvlab logits` (correctness)
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


class Rwkv7(torch.nn.Module):
    """Parameters under the official key names (blocks.{l}.att.*, blocks.{l}.ffn.*), [C]-shaped mixes."""

    def __init__(self, V, C, L, N, ranks, ln0=True):
        super().__init__()
        self.V, self.C, self.L, self.N, self.H = V, C, L, N, C // N
        Dw, Da, Dv, Dg = ranks
        P = torch.nn.Parameter
        g = torch.Generator().manual_seed(1234)

        def rnd(*shape, s=0.02):
            return P(torch.randn(*shape, generator=g) * s)

        self.p = p = {}  # official key -> Parameter (registered below under the key with '.' -> '__')
        p["emb.weight"] = rnd(V, C, s=1e-4)
        if ln0:
            p["blocks.0.ln0.weight"], p["blocks.0.ln0.bias"] = P(torch.ones(C)), P(torch.zeros(C))
        for l in range(L):
            b = f"blocks.{l}."
            for n in ("ln1", "ln2"):
                p[b + n + ".weight"], p[b + n + ".bias"] = P(torch.ones(C)), P(torch.zeros(C))
            a = b + "att."
            for n in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
                p[a + n] = P(torch.full((C,), 0.5))
            p[a + "w0"], p[a + "a0"], p[a + "v0"] = rnd(C, s=0.5), rnd(C), rnd(C)
            for n, D in (("w", Dw), ("a", Da), ("v", Dv), ("g", Dg)):
                p[a + n + "1"], p[a + n + "2"] = rnd(C, D, s=0.1), rnd(D, C, s=0.1)
            p[a + "k_k"], p[a + "k_a"] = P(torch.full((C,), 0.7)), P(torch.ones(C))
            p[a + "r_k"] = rnd(self.H, N)
            for n in ("receptance", "key", "value", "output"):
                p[a + n + ".weight"] = rnd(C, C, s=1 / math.sqrt(C))
            p[a + "ln_x.weight"], p[a + "ln_x.bias"] = P(torch.ones(C)), P(torch.zeros(C))
            p[b + "ffn.x_k"] = P(torch.full((C,), 0.5))
            p[b + "ffn.key.weight"] = rnd(4 * C, C, s=1 / math.sqrt(C))
            p[b + "ffn.value.weight"] = rnd(C, 4 * C, s=1 / math.sqrt(4 * C))
        p["ln_out.weight"], p["ln_out.bias"] = P(torch.ones(C)), P(torch.zeros(C))
        p["head.weight"] = rnd(V, C, s=1 / math.sqrt(C))
        for k, t in p.items():
            self.register_parameter(k.replace(".", "__"), t)

    def forward(self, idx):  # idx (B,T) -> logits (B,T,V)
        p, C, H, N = self.p, self.C, self.H, self.N
        B, T = idx.shape
        x = p["emb.weight"][idx]
        if "blocks.0.ln0.weight" in p:
            x = F.layer_norm(x, (C,), p["blocks.0.ln0.weight"], p["blocks.0.ln0.bias"], 1e-5)
        v_first = None
        for l in range(self.L):
            b, a = f"blocks.{l}.", f"blocks.{l}.att."
            xx = F.layer_norm(x, (C,), p[b + "ln1.weight"], p[b + "ln1.bias"], 1e-5)
            d = F.pad(xx, (0, 0, 1, -1)) - xx  # x_prev - x, x_prev = 0 at t = 0
            xr, xw, xk, xv, xa, xg = (xx + d * p[a + n] for n in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"))
            r = xr @ p[a + "receptance.weight"].T
            k = xk @ p[a + "key.weight"].T
            v = xv @ p[a + "value.weight"].T
            w = torch.exp(-math.exp(-0.5) * torch.sigmoid(p[a + "w0"] + torch.tanh(xw @ p[a + "w1"]) @ p[a + "w2"]))
            aa = torch.sigmoid(p[a + "a0"] + (xa @ p[a + "a1"]) @ p[a + "a2"])
            gate = torch.sigmoid(xg @ p[a + "g1"]) @ p[a + "g2"]
            kk = F.normalize((k * p[a + "k_k"]).view(B, T, H, N), dim=-1, eps=1e-12).view(B, T, C)
            k = k * (1 + (aa - 1) * p[a + "k_a"])
            if l == 0:
                v_first = v
            else:
                v = v + (v_first - v) * torch.sigmoid(p[a + "v0"] + (xv @ p[a + "v1"]) @ p[a + "v2"])
            # WKV: S (B,H,N,N), row i = value index, column j = key index
            rh, wh, kh, vh = (t.view(B, T, H, N) for t in (r, w, k, v))
            kkh, ah = kk.view(B, T, H, N), (kk * aa).view(B, T, H, N)
            S = torch.zeros(B, H, N, N)
            ys = []
            for t in range(T):  # elementwise products and sums (3x faster here than batched (N,N)@(N,1) matmuls)
                sa = -(S * kkh[:, t, :, None, :]).sum(-1, keepdim=True)  # (B,H,N,1), from the old state
                S = S * wh[:, t, :, None, :] + sa * ah[:, t, :, None, :] + vh[:, t, :, :, None] * kh[:, t, :, None, :]
                ys.append((S * rh[:, t, :, None, :]).sum(-1))
            y = torch.stack(ys, 1)  # (B,T,H,N)
            y = F.group_norm(y.reshape(B * T, C), H, p[a + "ln_x.weight"], p[a + "ln_x.bias"], 64e-5).view(B, T, H, N)
            bonus = (rh * kh * p[a + "r_k"]).sum(-1, keepdim=True) * vh
            y = (y + bonus).view(B, T, C)
            x = x + (y * gate) @ p[a + "output.weight"].T
            xx = F.layer_norm(x, (C,), p[b + "ln2.weight"], p[b + "ln2.bias"], 1e-5)
            xk = xx + (F.pad(xx, (0, 0, 1, -1)) - xx) * p[b + "ffn.x_k"]
            x = x + torch.relu(xk @ p[b + "ffn.key.weight"].T).square() @ p[b + "ffn.value.weight"].T
        x = F.layer_norm(x, (C,), p["ln_out.weight"], p["ln_out.bias"], 1e-5)
        return x @ p["head.weight"].T


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    ranks = [int(s) for s in args.ranks.split(",")]
    m = Rwkv7(args.vocab, args.d_model, args.layers, args.head_size, ranks)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    tok = torch.randint(0, args.vocab, (args.batch, args.T))
    tgt = torch.randint(0, args.vocab, (args.batch, args.T))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(tok).reshape(-1, args.vocab), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    dt = (time.perf_counter() - t0) / args.steps
    assert math.isfinite(loss), "non-finite loss"
    print(json.dumps({"peer": "pytorch-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "params": sum(q.numel() for q in m.parameters()), "ms_per_step": dt * 1e3,
                      "tokens_per_s": args.batch * args.T / dt}))


def verify(args):
    import numpy as np

    sd = torch.load(args.verify, map_location="cpu")
    C = sd["emb.weight"].shape[1]
    H, N = sd["blocks.0.att.r_k"].shape
    L = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    D = lambda n: sd[f"blocks.{min(1, L - 1)}.att.{n}1"].shape[1]
    m = Rwkv7(sd["emb.weight"].shape[0], C, L, N, [D("w"), D("a"), D("v"), D("g")], "blocks.0.ln0.weight" in sd)
    extra = [k for k in sd if k not in m.p and not k.startswith("blocks.0.att.v")]
    if extra:
        sys.exit(f"torch_rwkv7.py: tensors this plain peer does not model: {extra[:4]}")
    with torch.no_grad():
        for k, t in sd.items():
            if k in m.p:
                m.p[k].copy_(t.float().reshape(m.p[k].shape))
        tok = torch.tensor([[int(s) for s in args.tokens.split(",")]])
        got = m(tok)[0].numpy()
    ref = np.load(args.ref).reshape(got.shape)
    diff = float(np.abs(got - ref).max())
    print(json.dumps({"max_abs_diff": diff, "logit_std": float(ref.std()), "rel": diff / float(ref.std())}))
    return 0 if diff <= 1e-4 * float(ref.std()) + 1e-5 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--head-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=120)
    ap.add_argument("--ranks", default="32,32,32,64", help="Dw,Da,Dv,Dg")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--verify")
    ap.add_argument("--tokens")
    ap.add_argument("--ref")
    args = ap.parse_args()
    if args.verify:
        sys.exit(verify(args))
    bench(args)


if __name__ == "__main__":
    main()
