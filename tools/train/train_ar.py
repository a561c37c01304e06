#!/usr/bin/env python3
"""Train a small causal LM on TinyStories and write it in Hugging Face Llama layout.

    /usr/bin/python3 tools/train/train_ar.py --minutes 60 [--out models/tinystories-llama-7m]

Same shape, tokenizer, data and training loop as train_llada.py (common.py), with causal
attention and the next-token loss. The checkpoint is a LlamaForCausalLM: model.embed_tokens,
model.layers.{i}.{input_layernorm,self_attn.{q,k,v,o}_proj,post_attention_layernorm,
mlp.{gate,up,down}_proj}, model.norm, lm_head (untied), BF16.

Never run by CI. Seeds are fixed; the cosine schedule follows the wall clock unless
--max-steps is given.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (sets the thread environment before torch is imported)
import torch.nn.functional as F  # noqa: E402

from common import SPECIAL  # noqa: E402

LLAMA_NAMES = {
    "embed": "model.embed_tokens.weight",
    "block": "model.layers.{i}.",
    "attn_norm": "input_layernorm.weight",
    "q": "self_attn.q_proj.weight",
    "k": "self_attn.k_proj.weight",
    "v": "self_attn.v_proj.weight",
    "o": "self_attn.o_proj.weight",
    "ff_norm": "post_attention_layernorm.weight",
    "gate": "mlp.gate_proj.weight",
    "up": "mlp.up_proj.weight",
    "down": "mlp.down_proj.weight",
    "norm": "model.norm.weight",
    "head": "lm_head.weight",
}


def next_token_loss(model, x):
    logits = model(x[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


def loss_fn(model, x, gen):
    return next_token_loss(model, x), {}


def eval_fn(model, batches):
    n = sum(len(x) for x in batches)
    tot = sum(float(next_token_loss(model, x)) * len(x) for x in batches) / n
    return {"val_loss": round(tot, 4), "val_ppl": round(math.exp(tot), 2)}


def llama_config(args) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": SPECIAL["bos"],
        "eos_token_id": SPECIAL["eos"],
        "pad_token_id": SPECIAL["eos"],
        "head_dim": args.d_model // args.n_heads,
        "hidden_act": "silu",
        "hidden_size": args.d_model,
        "initializer_range": 0.02,
        "intermediate_size": args.mlp_hidden,
        "max_position_embeddings": args.max_seq,
        "mlp_bias": False,
        "num_attention_heads": args.n_heads,
        "num_hidden_layers": args.n_layers,
        "num_key_value_heads": args.n_kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-5,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
        "use_cache": True,
        "vocab_size": common.VOCAB_SIZE,
    }


def make_export(args):
    cfg = llama_config(args)
    gen_cfg = {
        "bos_token_id": SPECIAL["bos"],
        "eos_token_id": SPECIAL["eos"],
        "pad_token_id": SPECIAL["eos"],
        "do_sample": True,
        "temperature": 0.8,
        "top_k": 40,
        "max_new_tokens": 128,
        "transformers_version": "4.46.3",
    }
    return lambda model: (model.export_state(LLAMA_NAMES), cfg, gen_cfg)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(ap, str(common.REPO / "models/tinystories-llama-7m"))
    # 515k training tokens are seen ~14 times in an hour; the AR model overfits without it.
    ap.set_defaults(dropout=0.1)
    args = ap.parse_args(argv)
    common.run_training(
        args, kind="llama-ar", causal=True, loss_fn=loss_fn, eval_fn=eval_fn, export_fn=make_export(args),
        objective="next-token cross-entropy (nats/token) over positions 1..seq_len-1",
    )


if __name__ == "__main__":
    main()
