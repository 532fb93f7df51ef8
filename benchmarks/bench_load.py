"""Large-vocabulary load: a generated N x D ``.vec`` (default 2M x 300, ~5.5 GB of text) is
converted to ``.ekv`` by ``embedkit convert`` in a fresh process, and the ``.ekv`` opened.

Figures: the converting process's peak RSS (``wait4`` rusage) against the float32 matrix it must
hold (N·D·4 bytes; goal: within 1.3x), and the time to open the ``.ekv`` and answer one query
(memory-mapped: nothing is read but the header). ``--gensim`` adds gensim's
``load_word2vec_format`` on the same file, peak RSS and time, as the reference (slow: minutes).
Memory is not noisy; the times are, so run this on a quiet machine.

    python benchmarks/bench_load.py [--words 2000000] [--dim 300] [--dir DIR] [--bin] [--gensim]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import procs  # benchmarks/procs.py: each tool is measured through its launcher

GENERATE = """
import sys
import numpy as np
from embedkit.vectors.formats import word2vec_text
n, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
vectors = rng.standard_normal((n, dim), dtype=np.float32)
vectors *= np.float32(0.1)
word2vec_text.write(path, [f"w{i}" for i in range(n)], vectors)
"""

OPEN = """
import sys, time
import embedkit.vectors.model  # imports (numpy) are not part of opening
t = time.perf_counter()
v = embedkit.vectors.model.load(sys.argv[1])
opened = time.perf_counter() - t
v.most_similar(v.words[12345 % len(v)], k=10)
print(opened, time.perf_counter() - t)
"""

GENSIM = """
import sys, time
from gensim.models import KeyedVectors
t = time.perf_counter()
KeyedVectors.load_word2vec_format(sys.argv[1])
print(time.perf_counter() - t)
"""


def _run(args: list[str]) -> tuple[float, int, str]:
    """(seconds, peak RSS bytes, stdout) of a child process."""
    child, out, _ = procs.run(args, stdout=subprocess.PIPE, text=True)
    if child.code != 0:
        sys.exit(f"failed: {' '.join(args)}")
    return child.wall, child.rss_mib * 2**20, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--gensim", action="store_true", help="also time gensim (slow)")
    ap.add_argument("--bin", action="store_true",
                    help="also convert a word2vec binary of the same vectors to .ekv")
    a = ap.parse_args()
    tmp = Path(a.dir or tempfile.mkdtemp(prefix="bench_load."))
    tmp.mkdir(parents=True, exist_ok=True)
    vec, ekv = tmp / "big.vec", tmp / "big.ekv"
    if not vec.exists():
        _run([sys.executable, "-c", GENERATE, str(a.words), str(a.dim), str(vec)])
    matrix = a.words * a.dim * 4
    secs, rss, _ = _run([sys.executable, "-m", "embedkit", "convert", str(vec), str(ekv), "-q"])
    opened = [float(x) for x in _run([sys.executable, "-c", OPEN, str(ekv)])[2].split()]
    gb = 1 << 30
    print(f"{a.words:,} x {a.dim} .vec ({vec.stat().st_size / gb:.2f} GiB), "
          f"matrix {matrix / gb:.2f} GiB")
    print("| step | time | peak RSS | RSS / matrix |\n|---|---|---|---|")
    print(f"| embedkit convert .vec -> .ekv | {secs:.1f} s | {rss / gb:.2f} GiB | "
          f"{rss / matrix:.2f}x |")
    print(f"| embedkit.load(.ekv) | {opened[0]:.3f} s | | |")
    print(f"| load + first query | {opened[1]:.3f} s | | |")
    if a.bin:
        binary = tmp / "big.bin"
        if not binary.exists():
            _run([sys.executable, "-m", "embedkit", "convert", str(ekv), str(binary), "-q"])
        bsecs, brss, _ = _run([sys.executable, "-m", "embedkit", "convert", str(binary),
                               str(tmp / "from-bin.ekv"), "-q"])
        print(f"| embedkit convert .bin -> .ekv | {bsecs:.1f} s | {brss / gb:.2f} GiB | "
              f"{brss / matrix:.2f}x |")
    if a.gensim:
        _, grss, out = _run([sys.executable, "-c", GENSIM, str(vec)])
        gsecs = float(out)
        print(f"| gensim load_word2vec_format | {gsecs:.1f} s | {grss / gb:.2f} GiB | "
              f"{grss / matrix:.2f}x |")
        print(f"| ratio gensim / embedkit (time, RSS) | {gsecs / secs:.1f}x | "
              f"{grss / rss:.2f}x | |")


if __name__ == "__main__":
    main()
