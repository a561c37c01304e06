#!/usr/bin/env python3
"""Time one reference Dream diffusion_generate() on CPU with PyTorch (the baseline for difflm
benchmarks).

Loads a Dream-layout model folder (config.json + model.safetensors or shards + index; F32 or
BF16, e.g. one written by tools/fixtures/make_random_dream.py) into the authors' DreamModel
(NVlabs/Fast-dLLM dream/model/, the Dream-org hub files; loaded by
tools/fixtures/make_dream_fixtures.py's DreamReference, with its shims for machines without
transformers / torch >= 2), runs one warm-up forward on the full canvas, then times
`DreamGenerationMixin.diffusion_generate` (which runs `_sample`: batch 1, no attention mask,
temperature 0 by default, top_p/top_k off, alg_temp off) and prints one JSON object on stdout:
    {"seconds": ..., "tokens": [generated ids, prompt excluded], "nfe": ..., "settings": {...},
     "reference": {...}, "environment": {...}}
Progress, and what `_sample` prints ("used steps", "used time"), go to stderr.

Notes
  - The dtype defaults to the checkpoint's (config.json torch_dtype). bfloat16 converts the
    parameters only, as `from_pretrained(torch_dtype=torch.bfloat16)` leaves the model: the RoPE
    inv_freq buffers stay float32 (RMSNorm and RoPE compute in float32 inside the model; the
    sampler's softmax/entropy run in bf16 on bf16 logits). On torch < 2 the SDPA stand-in of
    llada_common computes softmax in the inputs' dtype.
  - Debian's python3-torch uses whatever libblas.so.3 points at; install libopenblas0-pthread
    for a meaningful baseline ("environment.blas_libraries" shows which library was loaded).
  - Threads: torch's OpenMP pool and OpenBLAS's own pthread pool both start one thread per
    core. With libgomp's default wait policy the idle OpenMP threads spin between ops and take
    the cores from OpenBLAS's sgemm: on a 2-core VM a float32 forward of the 100M bench model
    took 0.6-1.0 s with torch.set_num_threads(2), 0.19 s with OMP_WAIT_POLICY=PASSIVE (or with
    torch.set_num_threads(1), OpenBLAS still on 2 threads). bfloat16 runs on oneDNN (OpenMP
    itself) and is the other way round: 128 steps took 13.7-15.1 s unset, 17.9-18.3 s PASSIVE.
    --omp-wait-policy auto (the default) therefore sets PASSIVE for float32 and leaves bfloat16
    unset; the variable is set before torch is imported, and "environment" records it.

Example:
    /usr/bin/python3 bench/torch/dream_generate_bench.py --fastdllm-repo /work/.mirror/NVlabs+Fast-dLLM/repo \\
        --model /tmp/dream-bench-110m --prompt-file prompt.json --gen-length 128 --steps 128 \\
        --alg entropy --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "fixtures"))
import llada_common as lc  # noqa: E402
import make_dream_cache_fixtures as dream_cache_fx  # noqa: E402  (generation_utils_block.py)
import make_dream_fixtures as dream_fx  # noqa: E402  (DreamReference: the authors' code + shims)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_prompt(args, cfg: dict) -> list[int]:
    if args.prompt_file:
        text = Path(args.prompt_file).read_text().strip()
        return json.loads(text) if text.startswith("[") else [int(t) for t in text.replace(",", " ").split()]
    rng = np.random.default_rng(args.seed)
    specials = len(dream_fx.DREAM_SPECIALS)
    return [cfg["bos_token_id"]] + rng.integers(0, cfg["vocab_size"] - specials, args.prompt_len - 1).tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description="Time the reference Dream diffusion_generate() with PyTorch on CPU.")
    ap.add_argument("--fastdllm-repo", required=True, help="NVlabs/Fast-dLLM checkout or bare git dir")
    ap.add_argument("--fastdllm-commit", default=None, help="commit to record when the repo is a plain folder")
    ap.add_argument("--model", required=True, help="Dream-layout model folder")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--prompt-file", help="file with prompt token ids (JSON list, or whitespace/comma separated)")
    g.add_argument("--prompt-len", type=int, default=32, help="random prompt of this length (bos + ids)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the random prompt")
    ap.add_argument("--gen-length", type=int, default=128, help="max_new_tokens")
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--alg", choices=["maskgit_plus", "topk_margin", "entropy"], default="entropy")
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--cache", choices=["none", "prefix", "dual"], default="none",
                    help="prefix/dual: Fast-dLLM's generation_utils_block.py with that cache")
    ap.add_argument("--block-length", type=int, default=32, help="block_length (with --cache)")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                    help="default: as stored (config.json torch_dtype)")
    lc.add_omp_wait_policy_argument(ap)
    args = ap.parse_args()

    model_dir = Path(args.model)
    cfg = json.loads((model_dir / "config.json").read_text())
    dtype_name = args.dtype or ("bfloat16" if cfg.get("torch_dtype") == "bfloat16" else "float32")
    lc.set_omp_wait_policy(args.omp_wait_policy, dtype_name)
    import torch

    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    ids = {k: cfg[f"{k}_token_id"] for k in ("bos", "eos", "pad", "mask")}
    prompt_ids = read_prompt(args, cfg)
    assert ids["mask"] not in prompt_ids, "prompt must not contain the mask id"

    with tempfile.TemporaryDirectory(prefix="dream-ref-") as work:
        t0 = time.time()
        if args.cache == "none":
            ref = dream_fx.DreamReference(args.fastdllm_repo, Path(work), args.fastdllm_commit)
        else:
            ref = dream_cache_fx.block_reference(Path(work), args.fastdllm_repo, args.fastdllm_commit)
        weights = lc.read_checkpoint_dir(model_dir)  # float32 numpy (BF16 upcast exactly)
        model = ref.build_model(cfg, weights)
        del weights
        if dtype != torch.float32:
            for p in model.parameters():  # parameters only: inv_freq stays float32
                p.data = p.data.to(dtype)
        log(f"loaded {model_dir} as {dtype_name} in {time.time() - t0:.1f} s")

        prompt = torch.tensor([prompt_ids], dtype=torch.long)
        canvas = torch.cat([prompt, torch.full((1, args.gen_length), ids["mask"], dtype=torch.long)], dim=1)
        with torch.no_grad():
            t0 = time.time()
            model(canvas, "full", None)  # as _sample calls it
            log(f"warm-up forward ({canvas.shape[1]} tokens): {time.time() - t0:.3f} s")

        forwards = []  # one entry per model call (NFE)
        model.register_forward_hook(lambda *_: forwards.append(1))
        options = dream_fx.case_options(
            dict(alg=args.alg, max_new_tokens=args.gen_length, steps=args.steps, eps=args.eps), ids["mask"]
        )
        generation = ref.generation if args.cache == "none" else ref.block
        extra = {} if args.cache == "none" else {"block_length": args.block_length,
                                                 "dual_cache": args.cache == "dual"}
        gc = generation.DreamGenerationConfig(
            **options, bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
            output_history=False, return_dict_in_generate=False,
        )
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            # bos == pad, so diffusion_generate warns "Padding was detected but no attention mask".
            warnings.simplefilter("ignore", UserWarning)
            t0 = time.perf_counter()
            runner = model if args.cache == "none" else dream_cache_fx.block_model(ref, model)
            out = runner.diffusion_generate(prompt, generation_config=gc, **extra)
            seconds = time.perf_counter() - t0

    result = {
        "seconds": seconds,
        "tokens": out[0, len(prompt_ids) :].tolist(),
        "nfe": len(forwards),
        "settings": dict(
            {"model": str(model_dir), "dtype": dtype_name, "threads": args.threads, "prompt_len": len(prompt_ids),
             "cache": args.cache, **extra},
            **{k: v for k, v in options.items() if k != "mask_token_id"},
        ),
        "reference": {
            "fastdllm": ref.source["commit"],
            "files": dream_fx.REF_FILES,
            "call": "DreamModel.diffusion_generate(prompt, generation_config=DreamGenerationConfig(...))",
            "shims": ref.notes,
        },
        "environment": lc.torch_version_info() | lc.thread_environment(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
