#!/usr/bin/env python3
"""Train a small masked-diffusion LM on TinyStories and write it in exact LLaDA layout.

    /usr/bin/python3 tools/train/train_llada.py --minutes 60 [--out models/tinystories-llada-7m]

The model is common.Transformer with bidirectional attention; the checkpoint has LLaDA's tensor
names and shapes (model.transformer.wte / blocks.{i}.{attn_norm,q_proj,k_proj,v_proj,attn_out,
ff_norm,ff_proj,up_proj,ff_out} / ln_f / ff_out) and LLaDA's config.json keys, so difflm (and
the reference modeling_llada.py) load it as LLaDAModelLM.

Objective (LLaDA pretraining): per sequence t ~ U(0, 1), p = (1 - eps) t + eps with eps = 1e-3;
every position (bos included) is replaced by <|mdm_mask|> independently with probability p;
loss = sum over masked positions of CE / p, divided by batch size x sequence length. This is an
upper bound on the negative log-likelihood per token (in nats). Evaluation uses the same
estimator on the held-out windows with evenly spaced t and fixed mask noise.

Never run by CI. Not deterministic across machines (BLAS, and the cosine schedule follows the
wall clock unless --max-steps is given); seeds are fixed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (sets the thread environment before torch is imported)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import SPECIAL, lc  # noqa: E402

EPS = 1e-3
LLADA_NAMES = {
    "embed": "model.transformer.wte.weight",
    "block": "model.transformer.blocks.{i}.",
    "attn_norm": "attn_norm.weight",
    "q": "q_proj.weight",
    "k": "k_proj.weight",
    "v": "v_proj.weight",
    "o": "attn_out.weight",
    "ff_norm": "ff_norm.weight",
    "gate": "ff_proj.weight",
    "up": "up_proj.weight",
    "down": "ff_out.weight",
    "norm": "model.transformer.ln_f.weight",
    "head": "model.transformer.ff_out.weight",
}


def masked_loss(model, x, t, noise):
    """LLaDA's loss for clean ids x [b, l], times t [b] and uniform noise [b, l]."""
    b, l = x.shape
    p = ((1 - EPS) * t + EPS)[:, None].expand(b, l)
    masked = noise < p
    noisy = torch.where(masked, torch.full_like(x, SPECIAL["mask"]), x)
    h = model.hidden(noisy)
    logits = model.head(h[masked])  # the LM head only where the loss needs it
    ce = F.cross_entropy(logits, x[masked], reduction="none")
    loss = (ce / p[masked]).sum() / (b * l)
    acc = (logits.argmax(-1) == x[masked]).float().mean()
    return loss, ce.mean(), acc, masked.float().mean()


def loss_fn(model, x, gen):
    b, l = x.shape
    t = torch.rand(b, generator=gen)
    noise = torch.rand(b, l, generator=gen)
    loss, ce, acc, frac = masked_loss(model, x, t, noise)
    return loss, {"masked_ce": round(float(ce), 4), "masked_acc": round(float(acc), 4)}


def eval_fn(model, batches):
    gen = torch.Generator().manual_seed(4321)
    n = sum(len(x) for x in batches)
    t_all = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # stratified t
    tot = ce_tot = acc_tot = 0.0
    i = 0
    for x in batches:
        b, l = x.shape
        t = t_all[i : i + b]
        i += b
        loss, ce, acc, frac = masked_loss(model, x, t, torch.rand(b, l, generator=gen))
        tot += float(loss) * b
        ce_tot += float(ce) * b
        acc_tot += float(acc) * b
    return {"val_loss": round(tot / n, 4), "val_masked_ce": round(ce_tot / n, 4), "val_masked_acc": round(acc_tot / n, 4)}


def make_export(args):
    cfg = lc.make_config(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads,
                         n_kv_heads=args.n_kv_heads, mlp_hidden_size=args.mlp_hidden, vocab_size=common.VOCAB_SIZE,
                         rope_theta=10000.0, rms_norm_eps=1e-5, max_sequence_length=args.max_seq,
                         torch_dtype="bfloat16")
    expected = lc.tensor_shapes(cfg)
    gen_cfg = {
        "gen_length": 128,
        "steps": 128,
        "block_length": 32,
        "temperature": args.gen_temperature,
        "remasking": "low_confidence",
        "cfg_scale": 0.0,
        "bos_token_id": SPECIAL["bos"],
        "eos_token_id": SPECIAL["eos"],
        "mask_token_id": SPECIAL["mask"],
        "pad_token_id": SPECIAL["eos"],
    }

    def export(model):
        tensors = model.export_state(LLADA_NAMES)
        got = [(k, tuple(v.shape)) for k, v in tensors.items()]
        assert got == expected, "tensor names/shapes differ from LLaDA's layout"
        return tensors, cfg, gen_cfg

    return export


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(ap, str(common.REPO / "models/tinystories-llada-7m"))
    ap.add_argument("--gen-temperature", type=float, default=0.8, help="temperature for generation_config.json (0.8 reads better than greedy 0 for this small model)")
    args = ap.parse_args(argv)
    common.run_training(
        args, kind="llada-mdm", causal=False, loss_fn=loss_fn, eval_fn=eval_fn, export_fn=make_export(args),
        objective="LLaDA masked diffusion: t~U(0,1), p=(1-1e-3)t+1e-3, mask each position w.p. p, "
        "loss = sum_masked CE/p / (batch*seq_len) (NELBO bound per token, nats)",
    )


if __name__ == "__main__":
    main()
