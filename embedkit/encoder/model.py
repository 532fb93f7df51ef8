"""``Encoder``: a trained transformer encoder with its tokenizer — contextual piece vectors,
blank filling (mlm) and generation (clm).

Long inputs: ``embed`` cuts a line longer than ``max_len`` pieces into consecutive windows of
``max_len`` and encodes each on its own, so every piece still gets a vector; ``fill`` refuses such
lines; ``generate`` conditions on the last ``max_len`` pieces.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import UsageError
from . import checkpoint
from .network import forward
from .vocab import PieceVocab

MASK_TEXT = "[MASK]"


class Encoder:
    """Parameters (a dict of float32 arrays), architecture and the piece vocabulary."""

    def __init__(self, params: dict, config: dict, tokenizer, meta: dict | None = None):
        self.params = params
        self.config = dict(config)
        self.tokenizer = tokenizer
        self.vocab = PieceVocab(tokenizer)
        self.meta = meta or {}
        self.summary: dict | None = None

    # ---- training and files -------------------------------------------------------------------

    @classmethod
    def train(cls, corpus, tokenizer, encdir: str | os.PathLike, **options) -> "Encoder":
        """Pretrain on files ``corpus`` (a path or a list) with ``tokenizer`` (a ``BPETokenizer`` or
        a TOKDIR path) and write checkpoints into ``encdir``. Options as ``embedkit encoder
        train``: objective, layers, dim, heads, ffn, max_len, positions, batch_size, steps,
        epochs, lr, warmup, seed, threads, init_vectors, resume, quiet. The run's summary is kept
        in ``.summary``."""
        from . import trainer

        tok = _tokenizer(tokenizer)
        paths = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
        summary = trainer.train([os.fspath(p) for p in paths], tok, encdir, **options)
        enc = cls.load(encdir)
        enc.summary = summary
        return enc

    @classmethod
    def load(cls, encdir: str | os.PathLike) -> "Encoder":
        from ..bpe.model import BPETokenizer

        meta, params, _ = checkpoint.load(encdir)
        tok = BPETokenizer.from_files(meta["tokenizer"], checkpoint.path_of(encdir))
        enc = cls({k: np.array(v) for k, v in params.items()}, meta["config"], tok, meta)
        if enc.vocab.size != enc.config["vocab"]:
            raise UsageError(f"{checkpoint.path_of(encdir)}: the embedded tokenizer does not match "
                             f"the encoder's vocabulary")
        return enc

    def save(self, encdir: str | os.PathLike) -> None:
        """Write the parameters (no optimizer state) into ``encdir``, created if needed."""
        os.makedirs(encdir, exist_ok=True)
        checkpoint.save(encdir, self.config, self.params, self.tokenizer.to_files(),
                        self.vocab.special)

    # ---- queries ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.config["dim"]

    def pieces(self, text: str) -> list[str]:
        return [self.vocab.piece(i) for i in self.vocab.encode_batch([text])[0]]

    def embed(self, texts, layer: int = -1, pool: str = "none", batch_size: int = 32):
        """Contextual vectors: per text, [n_pieces, D] (``pool='none'``) or [D] (``'mean'``; zeros
        for a text without pieces). ``layer`` counts 0 = embeddings .. layers = last (-1)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        n_layers = self.config["layers"]
        if not -(n_layers + 1) <= layer <= n_layers:
            raise UsageError(f"--layer must be in {-(n_layers + 1)}..{n_layers} (got {layer})")
        if pool not in ("none", "mean"):
            raise UsageError(f"--pool must be none or mean (got {pool!r})")
        upto = layer % (n_layers + 1)
        ids = self.vocab.encode_batch(texts)
        vectors = self.encode_ids(ids, upto, batch_size)
        if pool == "mean":
            vectors = [v.mean(axis=0) if len(v) else np.zeros(self.dim, np.float32) for v in vectors]
        return vectors[0] if single else vectors

    def encode_ids(self, ids: list[list[int]], upto: int | None = None, batch_size: int = 32):
        """Hidden states [n, D] for each id list; windows of max_len, batched by length."""
        t_max = self.config["max_len"]
        chunks = []  # (text index, start, ids)
        for k, seq in enumerate(ids):
            for s in range(0, len(seq), t_max):
                chunks.append((k, s, seq[s:s + t_max]))
        out = [np.zeros((len(seq), self.dim), np.float32) for seq in ids]
        order = sorted(range(len(chunks)), key=lambda c: len(chunks[c][2]))
        for i in range(0, len(order), batch_size):
            group = [chunks[c] for c in order[i:i + batch_size]]
            width = len(group[-1][2])
            batch = np.full((len(group), width), self.vocab.pad, np.int64)
            keep = np.zeros((len(group), width), bool)
            for r, (_, _, seq) in enumerate(group):
                batch[r, :len(seq)] = seq
                keep[r, :len(seq)] = True
            h, _ = forward(self.params, self.config, batch, keep, upto)
            for r, (k, s, seq) in enumerate(group):
                out[k][s:s + len(seq)] = h[r, :len(seq)]
        return out

    def fill(self, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
        """For each ``[MASK]`` in ``text``, the k most likely pieces (text, probability)."""
        objective = self.config["objective"]
        if objective not in ("mlm", "mlm+contrastive"):
            hint = " (use generate)" if objective == "clm" else ""
            raise UsageError(f"this is a {objective} encoder: fill needs one trained with mlm{hint}")
        if MASK_TEXT not in text:
            raise UsageError(f"no {MASK_TEXT} in the text to fill")
        if k < 1:
            raise UsageError(f"-k must be at least 1 (got {k})")
        parts = text.split(MASK_TEXT)
        ids: list[int] = []
        where = []
        for n, part in enumerate(parts):
            if n < len(parts) - 1 and part.endswith(" "):
                part = part[:-1]  # " cat" is one piece: the blank carries the space
            ids.extend(self.vocab.encode_batch([part])[0] if part else [])
            if n < len(parts) - 1:
                where.append(len(ids))
                ids.append(self.vocab.mask)
        if len(ids) > self.config["max_len"]:
            raise UsageError(f"the text has {len(ids)} pieces, more than the encoder's max length "
                             f"{self.config['max_len']}")
        probs = self._probs(np.array([ids]), np.array(where))
        out = []
        for p in probs:
            top = np.argsort(-p, kind="stable")[:k]
            out.append([(self._piece_text(i), float(p[i])) for i in top])
        return out

    def _piece_text(self, i: int) -> str:
        """A piece as text; a piece that is part of a multi-byte character keeps its BPE name."""
        text = self.vocab.decode([i])
        return self.vocab.piece(i) if "\ufffd" in text else text

    def generate(self, prompt: str, tokens: int = 30, temperature: float = 0.8,
                 seed: int = 0) -> str:
        """The prompt continued by up to ``tokens`` sampled pieces (stops at an end of line)."""
        objective = self.config["objective"]
        if objective != "clm":
            hint = " (use fill)" if objective.startswith("mlm") else ""
            raise UsageError(f"this is a {objective} encoder: generate needs a clm encoder{hint}")
        if temperature < 0 or tokens < 0:
            raise UsageError("--temperature and --tokens must not be negative")
        rng = np.random.default_rng(seed)
        ids = list(self.vocab.encode_batch([prompt])[0]) or [self.vocab.sep]
        new: list[int] = []
        for _ in range(tokens):
            ctx = (ids + new)[-self.config["max_len"]:]
            p = self._probs(np.array([ctx]), np.array([len(ctx) - 1]), allow_sep=True)[0]
            if temperature == 0:
                nxt = int(np.argmax(p))
            else:
                logp = np.log(np.maximum(p, 1e-30)) / temperature
                q = np.exp(logp - logp.max())
                nxt = int(rng.choice(q.size, p=q / q.sum()))
            if nxt == self.vocab.sep:
                break
            new.append(nxt)
        return prompt + self.vocab.decode(new)

    def _probs(self, ids: np.ndarray, rows: np.ndarray, allow_sep: bool = False) -> np.ndarray:
        """[1, T] ids -> [len(rows), V] next/blank piece probabilities; specials get 0 (except
        [SEP] when ``allow_sep``)."""
        keep = np.ones(ids.shape, bool)
        h, _ = forward(self.params, self.config, ids, keep)
        logits = (h[0, rows] @ self.params["wte"].T + self.params["out_b"]).astype(np.float64)
        allowed = self.vocab.is_regular.copy()
        if allow_sep:
            allowed[self.vocab.sep] = True
        logits[:, ~allowed] = -math.inf
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _tokenizer(tok):
    if isinstance(tok, (str, os.PathLike)):
        from ..bpe.model import BPETokenizer

        return BPETokenizer.load(tok)
    return tok
