"""Query speed: embedkit vs gensim, measured in the same run on a synthetic model.

Rows: fresh-process ``embedkit nn MODEL word`` (native .ekv and .vec), a 1,000-query stdin batch
(whole ``embedkit nn`` process, load included) vs gensim ``most_similar`` one query at a time
(load excluded), loading and writing the .vec vs gensim's ``load/save_word2vec_format`` (after a
small warm-up write, so Numba's cached kernels are loaded and compile time is not counted).

    python benchmarks/bench_query.py [--words 100000] [--dim 300] [--queries 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _words(n: int, rng) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out, seen = [], set()
    while len(out) < n:
        w = "".join(rng.choice(letters, rng.integers(3, 12)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def _timed(cmd: list[str], stdin: bytes | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def _best(f, repeat: int) -> float:
    return min(f() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    a = ap.parse_args()

    from gensim.models import KeyedVectors

    from embedkit.vectors.model import Vectors, load

    tmp = Path(a.dir or tempfile.mkdtemp(prefix="bench_query."))
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = _words(a.words, rng)
    vecs = Vectors.from_arrays(words, rng.standard_normal((a.words, a.dim)).astype(np.float32))
    ekv, vec = tmp / "m.ekv", tmp / "m.vec"
    vecs.save(ekv)
    Vectors.from_arrays(words[:10], np.asarray(vecs.vectors[:10])).save(tmp / "warm.vec", format="vec")
    t = time.perf_counter()
    vecs.save(vec, format="vec")
    write_s = time.perf_counter() - t
    kv = KeyedVectors(a.dim)
    kv.add_vectors(words, np.asarray(vecs.vectors))
    t = time.perf_counter()
    kv.save_word2vec_format(str(tmp / "g.vec"))
    gwrite_s = time.perf_counter() - t
    queries = [words[i] for i in rng.integers(0, a.words, a.queries)]
    qbytes = ("\n".join(queries) + "\n").encode()
    exe = [sys.executable, "-m", "embedkit.cli"] if not _has_script() else ["embedkit"]
    _timed(exe + ["nn", str(ekv), words[5]])  # warm the page cache

    rows = []
    nn_ekv = [_timed(exe + ["nn", str(ekv), words[i]]) for i in range(a.repeat)]
    rows.append(("embedkit nn MODEL.ekv word (fresh process)", statistics.median(nn_ekv), None, None))
    nn_vec = _timed(exe + ["nn", str(vec), words[1]])
    rows.append(("embedkit nn MODEL.vec word (fresh process)", nn_vec, None, None))

    ours_batch = _best(lambda: _timed(exe + ["nn", str(ekv), "-k", "10"], qbytes), a.repeat)
    kv.fill_norms()

    def gensim_batch():
        t0 = time.perf_counter()
        for q in queries:
            kv.most_similar(q, topn=10)
        return time.perf_counter() - t0

    theirs_batch = _best(gensim_batch, a.repeat)
    rows.append((f"{a.queries}-query batch: embedkit process vs gensim most_similar loop",
                 ours_batch, theirs_batch, theirs_batch / ours_batch))
    v = load(ekv)
    in_proc = _best(lambda: _time_call(lambda: v.most_similar_many(queries, 10)), a.repeat)
    rows.append((f"{a.queries}-query batch in process (most_similar_many)", in_proc, theirs_batch,
                 theirs_batch / in_proc))

    ours_load = _best(lambda: _time_call(lambda: load(vec)), a.repeat)
    theirs_load = _best(lambda: _time_call(lambda: KeyedVectors.load_word2vec_format(str(vec))), a.repeat)
    rows.append(("load .vec (embedkit.load vs load_word2vec_format)", ours_load, theirs_load,
                 theirs_load / ours_load))
    rows.append(("write .vec (Vectors.save_vec vs save_word2vec_format)", write_s, gwrite_s,
                 gwrite_s / write_s))

    print(f"\nembedkit query benchmark: {a.words} words x {a.dim} dims, {a.queries} queries, "
          f"best/median of {a.repeat}, {os.cpu_count()} cpus")
    print(f"{'what':<64} {'embedkit s':>11} {'gensim s':>9} {'speedup':>8}")
    for what, ours, theirs, ratio in rows:
        print(f"{what:<64} {ours:>11.3f} {'' if theirs is None else f'{theirs:.3f}':>9} "
              f"{'' if ratio is None else f'{ratio:.2f}x':>8}")
    if a.dir is None:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


def _time_call(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def _has_script() -> bool:
    from shutil import which

    return which("embedkit") is not None


if __name__ == "__main__":
    main()
