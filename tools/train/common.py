"""Shared code of the TinyStories training scripts (train_llada.py, train_ar.py).

  - data: the TinyStories files of /work/shared/data, the BPE tokenizer (bpe.py), the tokenized
    corpus (cached under /tmp), random packed training batches and a fixed validation set;
  - the model: one small pre-norm transformer (RMSNorm, rotary rotate-half, SwiGLU, no biases,
    bidirectional or causal attention) whose tensors are renamed to a checkpoint layout on export;
  - the training loop: AdamW, warmup + cosine, gradient clipping, a wall-clock budget, periodic
    evaluation and checkpoints (config.json, BF16 model.safetensors, tokenizer files,
    generation_config.json, train_log.json) written atomically so that a reader (or a crash)
    never sees a half-written folder, plus a resumable float32 state under /tmp.

Runs on Debian's python3-torch (torch 1.13, CPU); safetensors and tokenizer files are written
with tools/fixtures/llada_common.py.
"""

from __future__ import annotations

import os

# Before torch is imported: one BLAS/OpenMP thread unless asked otherwise (two trainings share
# a 2-core machine). --threads sets torch's intra-op pool too.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("DIFFLM_TRAIN_THREADS", "1"))

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bpe  # noqa: E402
from bpe import lc  # noqa: E402  (tools/fixtures/llada_common.py)

REPO = Path(__file__).resolve().parents[2]
VOCAB_SIZE = 4096
SEQ_LEN = 128
WORK_DIR = Path("/tmp/difflm-train")
DEFAULT_TOKENIZER_DIR = WORK_DIR / "tokenizer"
SPECIAL = lc.special_token_ids(VOCAB_SIZE)  # bos, eos, eot, mask, start_header, end_header


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def data_dir() -> Path:
    for root in (REPO.parent / "shared", REPO / "shared", Path("/work/shared")):
        p = root / "data/corpus/tinystories"
        if p.is_dir():
            return p
    raise FileNotFoundError("shared/data/corpus/tinystories not found")


def train_file() -> Path:
    return data_dir() / "tinystories_train_first2MiB.txt"


def valid_file() -> Path:
    return data_dir() / "tinystories_valid_head.txt"


def read_train_stories() -> list[str]:
    """Training stories: the file's stories are separated by lines holding <|endoftext|>. The last
    one is cut off by the 2 MiB limit and is dropped (it would end in an eos mid-sentence)."""
    text = train_file().read_text(encoding="utf-8")
    parts = text.split("\n<|endoftext|>\n")
    stories = [p.strip() for p in parts[:-1]]
    return [s for s in stories if s]


def read_valid_text() -> str:
    """Held-out text (validation split). Its story boundaries are lost (stories and paragraphs are
    both separated by blank lines), so it is one document; blank lines become single newlines,
    as paragraphs are written in the training file."""
    text = valid_file().read_text(encoding="utf-8").strip()
    while "\n\n" in text:
        text = text.replace("\n\n", "\n")
    return text


def ensure_tokenizer(tok_dir) -> Path:
    tok_dir = Path(tok_dir)
    if not (tok_dir / "tokenizer.json").exists():
        bpe.train_tokenizer(read_train_stories(), tok_dir, VOCAB_SIZE)
    return tok_dir


def tokenize_corpus(tok_dir) -> dict:
    """{train: uint16 stream (each story followed by eos), train_starts: story start offsets,
    valid: uint16 stream}, cached under WORK_DIR keyed by the tokenizer and data hashes. Also
    writes <cache>.check.jsonl ({text, ids} per document) for check_tokenizer.mjs."""
    tok_sha = bpe.sha256_file(Path(tok_dir) / "tokenizer.json")
    tr_sha, va_sha = bpe.sha256_file(train_file()), bpe.sha256_file(valid_file())
    key = f"{tok_sha[:12]}-{tr_sha[:12]}-{va_sha[:12]}"
    cache = WORK_DIR / f"tinystories-{key}.npz"
    meta = {"tokenizer_json_sha256": tok_sha, "train_file": str(train_file()), "train_sha256": tr_sha,
            "valid_file": str(valid_file()), "valid_sha256": va_sha, "cache": str(cache)}
    if not cache.exists():
        t0 = time.time()
        enc = bpe.Encoder.from_file(Path(tok_dir) / "tokenizer.json")
        stories = read_train_stories()
        valid = read_valid_text()
        ids, starts = [], []
        check = []
        for s in stories:
            starts.append(len(ids))
            e = enc.encode(s)
            ids.extend(e)
            ids.append(SPECIAL["eos"])
            check.append({"text": s, "ids": e})
        v = enc.encode(valid)
        check.append({"text": valid, "ids": v})
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, train=np.array(ids, dtype=np.uint16), train_starts=np.array(starts, dtype=np.int64),
                 valid=np.array(v, dtype=np.uint16))
        os.replace(tmp, cache)
        with open(cache.with_suffix(".check.jsonl"), "w", encoding="utf-8") as f:
            for c in check:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        print(f"data: tokenized {len(stories)} stories -> {len(ids)} train tokens, {len(v)} valid tokens "
              f"in {time.time() - t0:.1f} s ({cache})", flush=True)
    z = np.load(cache)
    out = {"train": z["train"], "train_starts": z["train_starts"], "valid": z["valid"], "meta": meta}
    meta.update(train_stories=int(len(out["train_starts"])), train_tokens=int(len(out["train"])),
                valid_tokens=int(len(out["valid"])))
    return out


class Batches:
    """Random packed sequences of `seq_len` tokens: bos, then seq_len - 1 consecutive tokens of the
    eos-separated story stream. A fraction `story_start_frac` of the windows start at the
    beginning of a story (so "bos Once upon a time" is common), the others anywhere."""

    def __init__(self, stream, starts, seq_len, batch_size, seed, story_start_frac=0.5):
        self.stream = torch.from_numpy(stream.astype(np.int64))
        n = len(stream) - (seq_len - 1)
        self.max_start = n
        self.starts = starts[starts <= n]
        self.seq_len, self.batch_size, self.frac = seq_len, batch_size, story_start_frac
        self.rng = np.random.default_rng(seed)

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, s):
        self.rng.bit_generator.state = s

    def next(self) -> torch.Tensor:
        b, L = self.batch_size, self.seq_len
        anywhere = self.rng.integers(0, self.max_start + 1, size=b)
        at_story = self.starts[self.rng.integers(0, len(self.starts), size=b)]
        pick = self.rng.random(b) < self.frac
        offs = np.where(pick, at_story, anywhere)
        x = torch.empty(b, L, dtype=torch.long)
        x[:, 0] = SPECIAL["bos"]
        for i, o in enumerate(offs):
            x[i, 1:] = self.stream[o : o + L - 1]
        return x


def valid_batches(valid_stream, seq_len, n_seqs, batch_size) -> list[torch.Tensor]:
    """A fixed evaluation set: the first n_seqs consecutive windows of the held-out stream, each
    prefixed with bos."""
    v = torch.from_numpy(valid_stream.astype(np.int64))
    w = seq_len - 1
    n_seqs = min(n_seqs, len(v) // w)
    x = torch.empty(n_seqs, seq_len, dtype=torch.long)
    x[:, 0] = SPECIAL["bos"]
    x[:, 1:] = v[: n_seqs * w].view(n_seqs, w)
    return list(x.split(batch_size))


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["d_model"], c["d_model"] // c["n_heads"]
        self.n_heads, self.n_kv, self.hd = c["n_heads"], c["n_kv_heads"], hd
        self.attn_norm = RMSNorm(d, c["eps"])
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, self.n_kv * hd, bias=False)
        self.v = nn.Linear(d, self.n_kv * hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, c["eps"])
        self.gate = nn.Linear(d, c["mlp_hidden"], bias=False)
        self.up = nn.Linear(d, c["mlp_hidden"], bias=False)
        self.down = nn.Linear(c["mlp_hidden"], d, bias=False)
        self.drop = nn.Dropout(c.get("dropout", 0.0))  # training only; no weights

    def forward(self, x, cos, sin, mask):
        b, t, d = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(b, t, self.n_heads, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.n_kv != self.n_heads:
            rep = self.n_heads // self.n_kv
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        if mask is not None:
            att = att + mask
        y = torch.matmul(att.softmax(-1), v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.o(y))
        h = self.ff_norm(x)
        return x + self.drop(self.down(F.silu(self.gate(h)) * self.up(h)))


class Transformer(nn.Module):
    """Internal tensor names: embed, blocks.{i}.{attn_norm,q,k,v,o,ff_norm,gate,up,down}, norm, head.
    `export_state` renames them to a checkpoint layout."""

    def __init__(self, c, causal: bool):
        super().__init__()
        self.c, self.causal = c, causal
        self.embed = nn.Embedding(c["vocab_size"], c["d_model"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layers"]))
        self.norm = RMSNorm(c["d_model"], c["eps"])
        self.head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        hd = c["d_model"] // c["n_heads"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(c["max_seq"], dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = self.c["init_std"]
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith((".o.weight", ".down.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.c["n_layers"]))
            else:
                nn.init.normal_(p, 0.0, std)

    def hidden(self, ids):
        t = ids.shape[1]
        x = self.embed(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        mask = None
        if self.causal:
            mask = torch.full((t, t), float("-inf")).triu(1)
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.norm(x)

    def forward(self, ids):
        return self.head(self.hidden(ids))

    def export_state(self, names: dict) -> dict[str, np.ndarray]:
        """float32 arrays under checkpoint names, in checkpoint order: embed, per block attn_norm,
        q, k, v, o, ff_norm, gate, up, down, then norm, head. `names` maps "embed", "norm", "head"
        to full names, "block" to a prefix with {i}, and each block tensor to its suffix."""
        sd = {k: v.detach().float().cpu().numpy() for k, v in self.state_dict().items()}
        out = {names["embed"]: sd["embed.weight"]}
        for i in range(self.c["n_layers"]):
            pre = names["block"].format(i=i)
            for key in ("attn_norm", "q", "k", "v", "o", "ff_norm", "gate", "up", "down"):
                out[pre + names[key]] = sd[f"blocks.{i}.{key}.weight"]
        out[names["norm"]] = sd["norm.weight"]
        out[names["head"]] = sd["head.weight"]
        assert len(out) == len(sd)
        return out


def load_model_folder(model_dir, names: dict, causal: bool, dims: dict) -> Transformer:
    """A Transformer with a model folder's weights (BF16 -> float32), the inverse of
    Transformer.export_state. `dims` has the keys of model_config's arguments (d_model, n_layers,
    n_heads, n_kv_heads, mlp_hidden, max_seq)."""
    w = lc.read_safetensors(Path(model_dir) / "model.safetensors")
    model = Transformer(model_config(argparse.Namespace(dropout=0.0, **dims)), causal=causal)
    sd = {"embed.weight": w[names["embed"]], "norm.weight": w[names["norm"]], "head.weight": w[names["head"]]}
    for i in range(dims["n_layers"]):
        for key in ("attn_norm", "q", "k", "v", "o", "ff_norm", "gate", "up", "down"):
            sd[f"blocks.{i}.{key}.weight"] = w[names["block"].format(i=i) + names[key]]
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=True)
    return model.eval()


def model_config(args) -> dict:
    return {"d_model": args.d_model, "n_layers": args.n_layers, "n_heads": args.n_heads,
            "n_kv_heads": args.n_kv_heads, "mlp_hidden": args.mlp_hidden, "vocab_size": VOCAB_SIZE,
            "eps": 1e-5, "rope_theta": 10000.0, "max_seq": args.max_seq, "init_std": 0.02,
            "dropout": args.dropout}


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# Checkpoints and logs
# --------------------------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_model_folder(out_dir, tensors, config, generation_config, tok_dir, train_log) -> None:
    """Writes each file to a temporary name and renames it into place (the safetensors file last
    but one, train_log.json last), so a folder is always loadable."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def put(name, writer):
        tmp = out_dir / f".{name}.tmp"
        writer(tmp)
        os.replace(tmp, out_dir / name)

    for name in ("tokenizer.json", "tokenizer_config.json"):
        put(name, lambda p, n=name: shutil.copyfile(Path(tok_dir) / n, p))
    put("config.json", lambda p: lc.write_json(p, config))
    put("generation_config.json", lambda p: lc.write_json(p, generation_config))
    put("model.safetensors", lambda p: lc.write_safetensors(p, tensors, "BF16", {"format": "pt"}))
    put("train_log.json", lambda p: lc.write_json(p, train_log))


# --------------------------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------------------------


def add_common_args(ap: argparse.ArgumentParser, out_default: str) -> None:
    ap.add_argument("--out", default=out_default, help="model folder to write")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of the training loop")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--save-minutes", type=float, default=10.0, help="checkpoint interval")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=SEQ_LEN)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1, help="final lr as a fraction of --lr")
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.0, help="residual dropout (training only)")
    ap.add_argument("--keep-best", type=int, default=1,
                    help="1: a checkpoint replaces the folder's weights only if its validation loss is "
                    "the best so far (train_log.json is always updated); 0: always")
    ap.add_argument("--story-start-frac", type=float, default=0.5)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-seqs", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=6)
    ap.add_argument("--n-heads", type=int, default=8)
    ap.add_argument("--n-kv-heads", type=int, default=8)
    ap.add_argument("--mlp-hidden", type=int, default=704)
    ap.add_argument("--max-seq", type=int, default=256, help="max_sequence_length written to config.json")
    ap.add_argument("--tokenizer-dir", default=str(DEFAULT_TOKENIZER_DIR))
    ap.add_argument("--state", default=None, help="float32 resume state (default /tmp/difflm-train/<out name>.state.pt)")
    ap.add_argument("--resume", action="store_true", help="continue from --state")


def lr_at(args, step, progress) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    lo = args.lr * args.min_lr_frac
    return lo + (args.lr - lo) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def run_training(args, *, kind: str, causal: bool, loss_fn, eval_fn, export_fn, objective: str) -> None:
    """The shared loop. loss_fn(model, x, gen) -> (loss, stats dict); eval_fn(model, batches) ->
    dict with "val_loss"; export_fn(model) -> (tensors, config, generation_config)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    wall0 = time.time()
    started = utc_now()
    tok_dir = ensure_tokenizer(args.tokenizer_dir)
    data = tokenize_corpus(tok_dir)
    train = Batches(data["train"], data["train_starts"], args.seq_len, args.batch_size, args.seed,
                    args.story_start_frac)
    val = valid_batches(data["valid"], args.seq_len, args.eval_seqs, args.batch_size)
    model = Transformer(model_config(args), causal=causal)
    n_params = count_params(model)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed + 1)
    state_path = Path(args.state or WORK_DIR / f"{Path(args.out).name}.state.pt")
    step, tokens_seen, elapsed_before, curve = 0, 0, 0.0, []
    resumed_best = None
    if args.resume and state_path.exists():
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        train.set_state(st["batches"])
        step, tokens_seen, elapsed_before, curve = st["step"], st["tokens_seen"], st["elapsed"], st["curve"]
        resumed_best = st.get("best")
        print(f"resumed from {state_path} at step {step}", flush=True)
    print(f"{kind}: {n_params} parameters ({n_params / 1e6:.2f} M); {data['meta']['train_tokens']} train tokens "
          f"({data['meta']['train_stories']} stories), {data['meta']['valid_tokens']} valid tokens; "
          f"batch {args.batch_size} x {args.seq_len}; threads {torch.get_num_threads()}; budget {args.minutes} min",
          flush=True)

    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    budget = args.minutes * 60.0
    t_start = time.time() - elapsed_before
    last_save = time.time()
    win_loss, win_n, win_tok, win_t = 0.0, 0, 0, time.time()
    last_eval = None

    def elapsed():
        return time.time() - t_start

    def evaluate():
        model.eval()
        with torch.no_grad():
            r = eval_fn(model, val)
        model.train()
        return r

    best = resumed_best or {"val_loss": None, "step": None}

    def save(reason, ev):
        tensors, config, gen_cfg = export_fn(model)
        improved = best["val_loss"] is None or ev["val_loss"] <= best["val_loss"]
        if improved or not args.keep_best:
            best.update(val_loss=ev["val_loss"], step=step)
        log = {
            "kind": kind,
            "objective": objective,
            "command": " ".join([sys.executable] + sys.argv),
            "cwd": os.getcwd(),
            "started_utc": started,
            "saved_utc": utc_now(),
            "save_reason": reason,
            "train_loop_seconds": round(elapsed(), 1),
            "wall_seconds": round(time.time() - wall0 + elapsed_before, 1),
            "steps": step,
            "tokens_seen": tokens_seen,
            "epochs": round(tokens_seen / data["meta"]["train_tokens"], 3),
            "parameters": n_params,
            "data": data["meta"],
            "data_license": "TinyStories (roneneldan/TinyStories), CDLA-Sharing-1.0",
            "hyperparameters": {k: v for k, v in vars(args).items()},
            "environment": lc.torch_version_info() | {"torch_threads": torch.get_num_threads()},
            "last_eval": ev,
            "checkpoint": {"step": best["step"], "val_loss": best["val_loss"],
                           "rule": "best validation loss among saves" if args.keep_best else "latest"},
            "curve": curve,
        }
        if best["step"] == step:
            write_model_folder(args.out, tensors, config, gen_cfg, tok_dir, log)
        else:
            lc.write_json(Path(args.out) / ".train_log.json.tmp", log)
            os.replace(Path(args.out) / ".train_log.json.tmp", Path(args.out) / "train_log.json")
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                    "batches": train.state(), "step": step, "tokens_seen": tokens_seen,
                    "elapsed": elapsed(), "curve": curve, "best": best}, tmp)
        os.replace(tmp, state_path)
        print(f"saved {args.out} ({reason}) at step {step}, {elapsed() / 60:.1f} min, val_loss {ev['val_loss']}; "
              f"folder weights from step {best['step']}", flush=True)

    model.train()
    reason = "budget"
    while True:
        if elapsed() >= budget:
            break
        if args.max_steps and step >= args.max_steps:
            reason = "max_steps"
            break
        if stop["signal"]:
            reason = f"signal {stop['signal']}"
            break
        progress = elapsed() / budget
        if args.max_steps:
            progress = max(progress, step / args.max_steps)
        lr = lr_at(args, step, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        x = train.next()
        loss, stats = loss_fn(model, x, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip))
        opt.step()
        step += 1
        tokens_seen += x.numel()
        win_loss += float(loss)
        win_n += 1
        win_tok += x.numel()
        if step % args.log_every == 0:
            dt = time.time() - win_t
            row = {"step": step, "elapsed_s": round(elapsed(), 1), "lr": lr, "train_loss": round(win_loss / win_n, 4),
                   "grad_norm": round(gnorm, 3), "tokens_per_s": round(win_tok / dt, 1)}
            row.update(stats)
            if step % args.eval_every == 0:
                last_eval = evaluate() | {"step": step}
                row.update({k: v for k, v in last_eval.items() if k != "step"})
            curve.append(row)
            print(json.dumps(row), flush=True)
            win_loss, win_n, win_tok, win_t = 0.0, 0, 0, time.time()
        if time.time() - last_save >= args.save_minutes * 60.0:
            save("periodic", evaluate() | {"step": step})
            last_save = time.time()
    last_eval = evaluate() | {"step": step}
    curve.append({"step": step, "elapsed_s": round(elapsed(), 1)} | {k: v for k, v in last_eval.items() if k != "step"})
    print(json.dumps(curve[-1]), flush=True)
    save(f"end ({reason})", last_eval)
    print(f"done: {reason}, {step} steps, {tokens_seen} tokens, {elapsed() / 60:.1f} min", flush=True)
