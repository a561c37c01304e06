#!/usr/bin/env python3
"""Byte-level BPE (GPT-2 style) trained on TinyStories, written as a Hugging Face tokenizer.json.

    /usr/bin/python3 tools/train/bpe.py --out /tmp/difflm-train/tokenizer [--vocab-size 4096]

Layout of the 4096 ids (the same layout as the test fixtures, tools/fixtures/llada_common.py):
  0..255       the 256 byte tokens (GPT-2 byte-to-unicode strings, in byte order);
  256..V-7     BPE merge results, in merge order;
  V-6..V-1     the special tokens <|startoftext|> (bos), <|endoftext|> (eos), <|eot_id|>,
               <|mdm_mask|> (mask), <|start_header_id|>, <|end_header_id|> (added_tokens).

Training: the text is split with the GPT-2 pre-tokenizer regex (what the ByteLevel pre-tokenizer
of tokenizer.json does), every distinct pre-token ("word") is counted once, and then the most
frequent adjacent symbol pair is merged repeatedly. Pair counts are updated incrementally: a merge
only revisits the words that contain the pair (an index pair -> words), and a lazy max-heap finds
the next best pair. Ties go to the lexicographically smallest pair, so the result is
deterministic. Two different merges can produce the same string (("a", "bc") and ("ab", "c"));
such a merge is kept (it is needed to reproduce the segmentation) but gets no new id, and
training goes on until the vocabulary is full.

The tokenizer.json skeleton (pre-tokenizer, decoder, added tokens) comes from
tools/fixtures/llada_common.py. One difference from the fixtures: the post-processor is
Sequence[ByteLevel, TemplateProcessing("<|startoftext|> $A")], as in Llama 3's tokenizer.json, so
encoding a plain string with special tokens (what difflm does for a string prompt) starts with
bos, as every training sequence does. Chat prompts are encoded without special tokens; the chat
template writes bos.

`Encoder` below applies the merges in Python (used to tokenize the corpus for training);
tools/train/check_tokenizer.mjs checks that @huggingface/tokenizers gives the same ids.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import llada_common as lc  # noqa: E402

# GPT-2's pre-tokenizer regex, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Python's `re` has no \p{..}: [^\W\d_] is "letters" (plus the rare Nl/No numerals, which \p{N}
# would take instead) and \d is Unicode decimal digits. The two agree on TinyStories;
# check_tokenizer.mjs compares the whole corpus against the real tokenizer.
GPT2_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

SPECIAL_TOKENS = lc.SPECIAL_TOKENS
B2U = lc.bytes_to_unicode()


def pretokenize(text: str) -> list[str]:
    return GPT2_SPLIT.findall(text)


def word_symbols(word: str) -> tuple[str, ...]:
    return tuple(B2U[b] for b in word.encode("utf-8"))


def train_merges(word_counts: Counter, num_new_tokens: int, log_every: int = 500) -> list[tuple[str, str]]:
    """Merges until `num_new_tokens` distinct new symbols exist. `word_counts`: pre-token -> count."""
    words = [list(word_symbols(w)) for w in word_counts]
    counts = list(word_counts.values())
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, s in enumerate(words):
        for pair in zip(s, s[1:]):
            pair_counts[pair] += counts[i]
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)
    known = set(B2U.values())
    merges: list[tuple[str, str]] = []
    new_tokens = 0
    t0 = time.time()
    while new_tokens < num_new_tokens:
        if not heap:
            raise ValueError(f"corpus too small: only {new_tokens} new tokens could be made")
        neg, best = heapq.heappop(heap)
        if pair_counts.get(best, 0) != -neg:
            continue  # stale heap entry
        a, b = best
        joined = a + b
        merges.append(best)
        if joined not in known:
            known.add(joined)
            new_tokens += 1
        touched = set()
        for i in where.pop(best, ()):
            s = words[i]
            c = counts[i]
            out = []
            j = 0
            changed = False
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(joined)
                    j += 2
                    changed = True
                else:
                    out.append(s[j])
                    j += 1
            if not changed:
                continue
            for pair in zip(s, s[1:]):
                pair_counts[pair] -= c
                touched.add(pair)
            for pair in zip(out, out[1:]):
                pair_counts[pair] += c
                where[pair].add(i)
                touched.add(pair)
            words[i] = out
        pair_counts.pop(best, None)
        touched.discard(best)
        for pair in touched:
            n = pair_counts.get(pair, 0)
            if n > 0:
                heapq.heappush(heap, (-n, pair))
            else:
                pair_counts.pop(pair, None)
                where.pop(pair, None)
        if log_every and len(merges) % log_every == 0:
            print(f"  {len(merges)} merges, {new_tokens} new tokens, last {joined!r} x{-neg} "
                  f"({time.time() - t0:.1f} s)", flush=True)
    return merges


def build_tokenizer_json(merges: list[tuple[str, str]], vocab_size: int) -> dict:
    """tokenizer.json with the fixtures' skeleton, our merges and a bos-adding post-processor."""
    tok, _ = lc.build_tokenizer_json(vocab_size, "", max_merges=0)  # bytes + specials, no merges
    vocab = tok["model"]["vocab"]
    for a, b in merges:
        assert a in vocab and b in vocab, (a, b)
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    assert len(vocab) == vocab_size - lc.NUM_SPECIAL, len(vocab)
    tok["model"]["merges"] = [[a, b] for a, b in merges]
    bos_id = lc.special_token_ids(vocab_size)["bos"]
    bos = dict(SPECIAL_TOKENS)["bos"]
    tok["post_processor"] = {
        "type": "Sequence",
        "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [
                    {"SpecialToken": {"id": bos, "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": bos, "type_id": 1}},
                    {"Sequence": {"id": "B", "type_id": 1}},
                ],
                "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
            },
        ],
    }
    return tok


def build_tokenizer_config(vocab_size: int) -> dict:
    """The fixtures' tokenizer_config.json (LLaDA's shape and chat template), with add_bos_token
    true: tokenizer.json's post-processor adds bos to plain-string encodings."""
    cfg = lc.build_tokenizer_config(vocab_size)
    cfg["add_bos_token"] = True
    cfg["model_max_length"] = 256
    return cfg


class Encoder:
    """Python BPE encoder for a tokenizer.json written by this module (text without special tokens)."""

    def __init__(self, tokenizer_json: dict):
        model = tokenizer_json["model"]
        self.vocab: dict[str, int] = model["vocab"]
        self.ranks = {tuple(m): r for r, m in enumerate(model["merges"])}
        self.id_to_str = {i: s for s, i in self.vocab.items()}
        for t in tokenizer_json["added_tokens"]:
            self.id_to_str[t["id"]] = t["content"]
        self.special_ids = {t["id"] for t in tokenizer_json["added_tokens"]}
        self.cache: dict[str, list[int]] = {}
        u2b = {u: b for b, u in B2U.items()}
        self.u2b = u2b

    @classmethod
    def from_file(cls, path) -> "Encoder":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def _bpe(self, word: str) -> list[int]:
        s = list(word_symbols(word))
        ranks = self.ranks
        while len(s) > 1:
            best, best_rank = None, None
            for pair in zip(s, s[1:]):
                r = ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            a, b = best
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            s = out
        return [self.vocab[x] for x in s]

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        cache = self.cache
        for w in pretokenize(text):
            r = cache.get(w)
            if r is None:
                r = cache[w] = self._bpe(w)
            ids.extend(r)
        return ids

    def decode(self, ids) -> str:
        parts = []
        for i in ids:
            i = int(i)
            if i in self.special_ids:
                continue
            parts.extend(self.u2b[ch] for ch in self.id_to_str[i])
        return bytes(parts).decode("utf-8", errors="replace")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def train_tokenizer(stories: list[str], out_dir, vocab_size: int = 4096) -> dict:
    """Trains on `stories` (pre-tokenized one by one: no pre-token spans two stories) and writes
    tokenizer.json + tokenizer_config.json to `out_dir`. Returns a summary."""
    t0 = time.time()
    word_counts: Counter = Counter()
    for story in stories:
        word_counts.update(pretokenize(story))
    print(f"bpe: {sum(word_counts.values())} pre-tokens, {len(word_counts)} distinct", flush=True)
    merges = train_merges(word_counts, vocab_size - lc.NUM_SPECIAL - 256)
    tok = build_tokenizer_json(merges, vocab_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lc.write_json(out_dir / "tokenizer.json", tok, indent=None)
    lc.write_json(out_dir / "tokenizer_config.json", build_tokenizer_config(vocab_size))
    summary = {
        "vocab_size": vocab_size,
        "merges": len(merges),
        "duplicate_merge_results": len(merges) - (vocab_size - lc.NUM_SPECIAL - 256),
        "special_token_ids": {content: lc.special_token_ids(vocab_size)[key] for key, content in SPECIAL_TOKENS},
        "seconds": round(time.time() - t0, 1),
        "tokenizer_json_sha256": sha256_file(out_dir / "tokenizer.json"),
    }
    print(f"bpe: {summary}", flush=True)
    return summary


def main(argv=None) -> None:
    # Imported here: common.py imports this module.
    import common

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(common.DEFAULT_TOKENIZER_DIR))
    ap.add_argument("--vocab-size", type=int, default=common.VOCAB_SIZE)
    args = ap.parse_args(argv)
    train_tokenizer(common.read_train_stories(), args.out, args.vocab_size)


if __name__ == "__main__":
    main()
