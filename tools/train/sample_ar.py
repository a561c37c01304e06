#!/usr/bin/env python3
"""Sample from a model folder written by train_ar.py (difflm has no AR engine yet).

    /usr/bin/python3 tools/train/sample_ar.py models/tinystories-llama-7m "Once upon a time" [-n 3]

Encodes the prompt after bos, then draws tokens with the folder's generation_config.json
(temperature, top_k) until eos or max_new_tokens. One thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import torch  # noqa: E402

import bpe  # noqa: E402
from common import SPECIAL  # noqa: E402
from train_ar import LLAMA_NAMES  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("prompt", nargs="?", default="Once upon a time")
    ap.add_argument("-n", type=int, default=3, help="number of samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = Path(args.model)
    cfg = json.loads((d / "config.json").read_text())
    gen = json.loads((d / "generation_config.json").read_text())
    temperature = args.temperature if args.temperature is not None else gen.get("temperature", 1.0)
    top_k = args.top_k if args.top_k is not None else gen.get("top_k", 0)
    max_new = args.max_new_tokens or gen.get("max_new_tokens", 128)
    dims = {"d_model": cfg["hidden_size"], "n_layers": cfg["num_hidden_layers"], "n_heads": cfg["num_attention_heads"],
            "n_kv_heads": cfg["num_key_value_heads"], "mlp_hidden": cfg["intermediate_size"],
            "max_seq": cfg["max_position_embeddings"]}
    model = common.load_model_folder(d, LLAMA_NAMES, causal=True, dims=dims)
    enc = bpe.Encoder.from_file(d / "tokenizer.json")
    prompt = [SPECIAL["bos"]] + enc.encode(args.prompt)
    g = torch.Generator().manual_seed(args.seed)
    for n in range(args.n):
        ids = list(prompt)
        with torch.no_grad():
            while len(ids) - len(prompt) < max_new and len(ids) < dims["max_seq"]:
                logits = model(torch.tensor([ids]))[0, -1].double()
                if temperature <= 0:
                    nxt = int(logits.argmax())
                else:
                    logits = logits / temperature
                    if top_k:
                        kth = torch.topk(logits, top_k).values[-1]
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=g))
                if nxt == SPECIAL["eos"]:
                    break
                ids.append(nxt)
        print(f"--- sample {n} (temperature {temperature}, top_k {top_k})")
        print(enc.decode(ids))


if __name__ == "__main__":
    main()
