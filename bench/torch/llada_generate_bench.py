#!/usr/bin/env python3
"""Time one reference LLaDA generate() on CPU with PyTorch (the baseline for difflm benchmarks).

Loads a LLaDA-layout model folder (config.json + model.safetensors or shards + index; F32 or BF16,
e.g. one written by tools/fixtures/make_random_llada.py) into NVlabs/Fast-dLLM's
llada/model/modeling_llada.py (cache-free forward = LLaDA's), runs one warm-up forward on the
full canvas, then times ML-GSAI/LLaDA generate.py `generate()` (temperature 0, low_confidence
remasking, no CFG unless asked) and prints one JSON object on stdout:
    {"seconds": ..., "tokens": [generated ids, prompt excluded], "nfe": ..., "settings": {...},
     "environment": {...}}
Progress goes to stderr.

The reference repos may be checkouts or bare git dirs (e.g. /work/.mirror/<owner>+<name>/repo);
see tools/fixtures/README.md. Shims for machines without transformers/torch>=2 are described in
tools/fixtures/llada_common.py section 5.

Notes
  - Debian's python3-torch uses whatever libblas.so.3 points at; with the reference BLAS it is
    very slow. Install libopenblas0-pthread for a meaningful baseline; "environment.blas_libraries"
    in the output shows which library was loaded.
  - Threads: OMP_WAIT_POLICY is set as --omp-wait-policy says (llada_common.set_omp_wait_policy:
    PASSIVE for float32 by default, where spinning OpenMP threads otherwise starve OpenBLAS).
  - bfloat16 runs the model in bf16 like the authors' GPU setup (RMSNorm and RoPE internally
    in float32, softmax in bf16 inside generate()).

Example:
    /usr/bin/python3 bench/torch/llada_generate_bench.py \\
        --llada-repo /work/.mirror/ML-GSAI+LLaDA/repo --fastdllm-repo /work/.mirror/NVlabs+Fast-dLLM/repo \\
        --model /tmp/llada-bench-110m --prompt-len 32 --gen-length 128 --steps 128 --block-length 32 \\
        --threads 2 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "fixtures"))
import llada_common as lc  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Time the reference LLaDA generate() with PyTorch on CPU.")
    ap.add_argument("--llada-repo", required=True, help="ML-GSAI/LLaDA checkout or bare git dir")
    ap.add_argument("--fastdllm-repo", required=True, help="NVlabs/Fast-dLLM checkout or bare git dir")
    ap.add_argument("--model", required=True, help="LLaDA-layout model folder")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--prompt-ids", help="file with prompt token ids (JSON list, or whitespace/comma separated)")
    g.add_argument("--prompt-len", type=int, default=32, help="random prompt of this length (bos + ids)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the random prompt")
    ap.add_argument("--gen-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--cfg-scale", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    lc.add_omp_wait_policy_argument(ap)
    args = ap.parse_args()

    lc.set_omp_wait_policy(args.omp_wait_policy, args.dtype)
    import torch

    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    model_dir = Path(args.model)
    cfg = json.loads((model_dir / "config.json").read_text())
    mask_id = cfg["mask_token_id"]

    if args.prompt_ids:
        text = Path(args.prompt_ids).read_text().strip()
        prompt_ids = json.loads(text) if text.startswith("[") else [int(t) for t in text.replace(",", " ").split()]
    else:
        rng = np.random.default_rng(args.seed)
        bos = cfg.get("bos_token_id", lc.special_token_ids(cfg["vocab_size"])["bos"])
        prompt_ids = [bos] + rng.integers(0, cfg["vocab_size"] - lc.NUM_SPECIAL, args.prompt_len - 1).tolist()
    assert mask_id not in prompt_ids, "prompt must not contain the mask id"

    with tempfile.TemporaryDirectory(prefix="llada-ref-") as work:
        t0 = time.time()
        ref = lc.Reference(args.llada_repo, args.fastdllm_repo, work)
        weights = lc.read_checkpoint_dir(model_dir)  # float32 numpy (BF16 upcast exactly)
        model = ref.build_model(cfg, weights, dtype=dtype)
        del weights
        log(f"loaded {model_dir} as {args.dtype} in {time.time() - t0:.1f} s")

        prompt = torch.tensor([prompt_ids], dtype=torch.long)
        attn = torch.ones_like(prompt) if args.cfg_scale > 0 else None  # generate.py needs it with CFG
        canvas = torch.cat([prompt, torch.full((1, args.gen_length), mask_id, dtype=torch.long)], dim=1)
        with torch.no_grad():
            t0 = time.time()
            model(canvas)
            log(f"warm-up forward ({canvas.shape[1]} tokens): {time.time() - t0:.3f} s")

        calls = [0]
        forward = model.forward

        def counting_forward(*a, **k):
            calls[0] += 1
            return forward(*a, **k)

        model.forward = counting_forward
        t0 = time.perf_counter()
        out = ref.generate.generate(
            model,
            prompt,
            attention_mask=attn,
            steps=args.steps,
            gen_length=args.gen_length,
            block_length=args.block_length,
            temperature=0.0,
            cfg_scale=args.cfg_scale,
            remasking="low_confidence",
            mask_id=mask_id,
        )
        seconds = time.perf_counter() - t0

    result = {
        "seconds": seconds,
        "tokens": out[0, len(prompt_ids) :].tolist(),
        "nfe": calls[0],
        "settings": {
            "model": str(model_dir),
            "dtype": args.dtype,
            "threads": args.threads,
            "prompt_len": len(prompt_ids),
            "gen_length": args.gen_length,
            "steps": args.steps,
            "block_length": args.block_length,
            "cfg_scale": args.cfg_scale,
        },
        "reference": {k: v["commit"] for k, v in ref.sources.items()},
        "environment": lc.torch_version_info() | lc.thread_environment(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
