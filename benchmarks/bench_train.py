"""Benchmark `embedkit train` against fastText and gensim (corpus_file mode) in the same run.

Each tool runs as its own process (timed whole, peak RSS from wait4) with the issue's settings —
dim 100, window 5, negative 5, 5 epochs, min-count 5, sample 1e-4, lr 0.05, 2 threads — and writes
a .vec; quality is WordSim-353 Spearman and Google analogy accuracy (3CosAdd, top 30k words) from
gensim's evaluators on every tool's .vec. Tools alternate within each seed so machine noise hits
all of them alike. ``--memory`` also trains embedkit on 1x and 4x the corpus (1 epoch) to show
that peak RSS does not grow with corpus length.

    python benchmarks/bench_train.py             # 4 configs x 3 seeds x 3 tools (~20 min)
    python benchmarks/bench_train.py --quick     # cbow, no subwords, 1 seed
    python benchmarks/bench_train.py --bpe       # BPE bags vs char n-grams, embedkit only
    python benchmarks/bench_train.py --oov       # held-out words: OOV vector vs trained vector

BPE configs are ``MODEL/bpe{K}k-{all|weighted|segmentation}[-min{L}][-max{L}]``: a byte-level tokenizer of
K thousand tokens is learned on dev.tok itself (already lower-cased tokens, so the tokenizer and
the vectors see the same words; no --lowercase anywhere), then passed to ``--subwords bpe``.
"""
from __future__ import annotations

import argparse
import collections
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import procs  # benchmarks/procs.py: each tool is measured through its launcher

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPUS = DATA / "corpus" / "dev.tok"
WS353 = DATA / "eval" / "wordsim353.tsv"
ANALOGIES = DATA / "eval" / "questions-words.txt"
S = dict(dim=100, window=5, negative=5, epochs=5, min_count=5, sample=1e-4, lr=0.05, threads=2)
CONFIGS = [("cbow", "none"), ("cbow", "char"), ("skipgram", "none"), ("skipgram", "char")]
BPE_SUBS = ["char", "bpe8k-segmentation", "bpe32k-segmentation", "bpe8k-all", "bpe16k-all",
            "bpe32k-all", "bpe64k-all", "bpe8k-weighted", "bpe16k-weighted", "bpe32k-weighted",
            "bpe64k-weighted"]
BPE_CONFIGS = [(m, sub) for m in ("skipgram", "cbow") for sub in BPE_SUBS]
OOV_SUBS = ["char", "bpe64k-segmentation", "bpe64k-all", "bpe64k-weighted"]
_BPE = re.compile(r"bpe(\d+)k-(all|weighted|segmentation)(?:-min(\d+))?(?:-max(\d+))?$")
TOKDIRS: dict[tuple[str, int], str] = {}  # (corpus, K) -> TOKDIR learned in the temp folder

FASTTEXT = """
import sys, fasttext
model, sub, seed, corpus, out = sys.argv[1:6]
minn, maxn = (3, 6) if sub == "char" else (0, 0)
m = fasttext.train_unsupervised(corpus, model=model, dim={dim}, ws={window}, neg={negative},
    epoch={epochs}, minCount={min_count}, t={sample}, lr={lr}, thread={threads}, minn=minn,
    maxn=maxn, bucket=2000000 if sub == "char" else 0, verbose=0)  # no seed option
m.save_model(out[:-4] + ".bin")  # fastText's own (C++) writer, timed like embedkit's
""".format(**S)

# untimed: the .vec that the quality evaluators read, from fastText's .bin (a Python loop, so
# it stays outside fastText's timed process)
FASTTEXT_VEC = """
import sys, fasttext
out = sys.argv[1]
m = fasttext.load_model(out[:-4] + ".bin")
words = m.get_words()
with open(out, "w", encoding="utf-8") as f:
    f.write(f"{len(words)} {m.get_dimension()}\\n")
    for w in words:
        f.write(w + " " + " ".join("%.5g" % x for x in m.get_word_vector(w)) + "\\n")
"""

GENSIM = """
import sys
from gensim.models import FastText, Word2Vec
model, sub, seed, corpus, out = sys.argv[1:6]
kw = dict(corpus_file=corpus, vector_size={dim}, window={window}, negative={negative},
          epochs={epochs}, min_count={min_count}, sample={sample}, alpha={lr}, workers={threads},
          sg=int(model == "skipgram"), seed=int(seed))
m = FastText(min_n=3, max_n=6, bucket=2000000, **kw) if sub == "char" else Word2Vec(**kw)
m.wv.save_word2vec_format(out)
""".format(**S)


def tokenizer(corpus, k: int, tmp) -> str:
    """A byte-level BPE of k thousand tokens learned on ``corpus`` (once per corpus and size)."""
    key = (str(corpus), k)
    if key not in TOKDIRS:
        out = str(Path(tmp) / f"tok{len(TOKDIRS)}-{k}k")
        subprocess.run([sys.executable, "-m", "embedkit", "bpe", "learn", str(corpus), "-o", out,
                        "--vocab-size", str(1000 * k), "--threads", str(S["threads"]), "-q"],
                       check=True, stdout=subprocess.DEVNULL)
        TOKDIRS[key] = out
    return TOKDIRS[key]


def subword_args(sub, corpus, tmp) -> list[str]:
    m = _BPE.match(sub)
    if m is None:
        return ["--subwords", sub]
    k, bag, lo, hi = m.groups()
    args = ["--subwords", "bpe", "--tokenizer", tokenizer(corpus, int(k), tmp), "--bpe-bag", bag]
    return args + (["--bpe-min-len", lo] if lo else []) + (["--bpe-max-len", hi] if hi else [])


def embedkit_cmd(model, sub, seed, corpus, out, epochs=S["epochs"], min_count=S["min_count"]):
    return [sys.executable, "-m", "embedkit", "train", str(corpus), "-o", out[:-4], "--model", model,
            *subword_args(sub, corpus, Path(out).parent), "--dim", str(S["dim"]), "--window",
            str(S["window"]), "--negative", str(S["negative"]), "--epochs", str(epochs),
            "--min-count", str(min_count), "--sample", str(S["sample"]), "--lr", str(S["lr"]),
            "--threads", str(S["threads"]), "--seed", str(seed), "--quiet"]


TOOLS = {
    "embedkit": embedkit_cmd,
    "fastText": lambda model, sub, seed, corpus, out: [sys.executable, "-c", FASTTEXT, model, sub,
                                                       str(seed), str(corpus), out],
    "gensim": lambda model, sub, seed, corpus, out: [sys.executable, "-c", GENSIM, model, sub,
                                                     str(seed), str(corpus), out],
}


def run(cmd) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    child, _, err = procs.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if child.code != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({child.code}): "
                           f"{err.decode(errors='replace')[-2000:]}")
    return child.wall, child.rss_mib


def quality(vec: str) -> tuple[float, float]:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(vec)
    rho = kv.evaluate_word_pairs(str(WS353))[1][0]
    acc = kv.evaluate_word_analogies(str(ANALOGIES), restrict_vocab=30000)[0]
    return rho, 100 * acc


def available(tool: str) -> bool:
    mod = {"fastText": "fasttext", "gensim": "gensim"}.get(tool)
    if mod is None:
        return True
    try:
        __import__(mod)
        return True
    except ImportError:
        print(f"# {tool}: python module {mod!r} not installed, skipped", file=sys.stderr)
        return False


def med(xs, fmt):
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt % statistics.median(xs)) + " (" + (fmt % min(xs)) + "–" + (fmt % max(xs)) + ")"


def warm_up(tmp):
    """Compile embedkit's Numba kernels once (cached on disk) so no timed run pays for it: the
    reference tools are compiled ahead of time too."""
    tiny = Path(tmp) / "tiny.txt"
    tiny.write_text("a b c d e f\n" * 50)
    for model, sub in CONFIGS:
        run(embedkit_cmd(model, sub, 1, tiny, str(Path(tmp) / "tiny.vec"), epochs=1))
    for sub in ("bpe1k-all", "bpe1k-segmentation"):
        run(embedkit_cmd("cbow", sub, 1, tiny, str(Path(tmp) / "tiny.vec"), epochs=1))


def bench(configs, seeds, tools, tmp):
    rows = []
    for model, sub in configs:
        res = {t: [] for t in tools}
        for seed in range(1, seeds + 1):
            for tool in tools:
                out = str(Path(tmp) / f"{tool}-{model}-{sub}-{seed}.vec")
                wall, rss = run(TOOLS[tool](model, sub, seed, CORPUS, out))
                if tool == "fastText":
                    subprocess.run([sys.executable, "-c", FASTTEXT_VEC, out], check=True)
                rho, acc = quality(out)
                res[tool].append((wall, rss, rho, acc))
                print(f"# {model}/{sub} seed {seed} {tool}: {wall:.1f} s {rss:.0f} MiB "
                      f"rho {rho:.3f} acc {acc:.1f}%", file=sys.stderr, flush=True)
        ek = statistics.median(r[0] for r in res["embedkit"])
        for tool in tools:
            rs = res[tool]
            t = statistics.median(r[0] for r in rs)
            rows.append((f"{model}/{sub}", tool, med([r[0] for r in rs], "%.1f"),
                         "1.00" if tool == "embedkit" else f"{t / ek:.2f}",
                         med([r[1] for r in rs], "%.0f"), med([r[2] for r in rs], "%.3f"),
                         med([r[3] for r in rs], "%.1f")))
    return rows


def subwords_per_word(ekv: str) -> float:
    """Mean subword rows per vocabulary word (the bag without the word's own row)."""
    import embedkit
    from embedkit.wordvec.trainer import subword_table

    v = embedkit.load(ekv)
    _, ids, _, _ = subword_table(v.scheme, v.words)
    return int((ids >= len(v.words)).sum()) / len(v.words)


def bench_bpe(configs, seeds, tmp):
    """embedkit alone; each row's time and RSS also relative to char n-grams of the same model."""
    res = {c: [] for c in configs}
    for seed in range(1, seeds + 1):
        for model, sub in configs:
            base = str(Path(tmp) / f"bpe-{model}-{sub}-{seed}")
            wall, rss = run(embedkit_cmd(model, sub, seed, CORPUS, base + ".vec"))
            rho, acc = quality(base + ".vec")
            bag = subwords_per_word(base + ".ekv")
            res[(model, sub)].append((wall, rss, rho, acc, bag))
            print(f"# {model}/{sub} seed {seed}: {wall:.1f} s {rss:.0f} MiB rho {rho:.3f} "
                  f"acc {acc:.1f}% {bag:.1f} subwords/word", file=sys.stderr, flush=True)
    rows = []
    for model, sub in configs:
        rs = res[(model, sub)]
        char = res.get((model, "char"))
        rel = lambda k: f"{statistics.median(r[k] for r in rs) / statistics.median(r[k] for r in char):.2f}" \
            if char else ""
        rows.append((f"{model}/{sub}", med([r[0] for r in rs], "%.1f"), rel(0),
                     med([r[1] for r in rs], "%.0f"), rel(1), med([r[2] for r in rs], "%.3f"),
                     med([r[3] for r in rs], "%.1f"), f"{statistics.median(r[4] for r in rs):.1f}"))
    return rows


OOV_SHARE, OOV_MIN_COUNT = 0.05, 20


def held_out_corpus(tmp, seed: int = 1) -> tuple[Path, list[str]]:
    """dev.tok without 5% of its vocabulary (sampled among words seen >= 20 times): every
    occurrence of those words is deleted from its line, so they are unseen by the tokenizer and
    the vectors alike, and the rest of each line keeps its order."""
    counts = collections.Counter()
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    vocab = sum(c >= S["min_count"] for c in counts.values())
    pool = sorted(w for w, c in counts.items() if c >= OOV_MIN_COUNT)
    held = random.Random(seed).sample(pool, round(OOV_SHARE * vocab))
    drop = set(held)
    out = Path(tmp) / "dev-heldout.tok"
    with open(CORPUS, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for line in f:
            g.write(" ".join(w for w in line.split() if w not in drop) + "\n")
    return out, held


def oov(model, subs, tmp):
    """Model A trains on dev.tok, model B on dev.tok without the held-out words (B's tokenizer is
    learned without them too), with another seed so no similarity comes from a shared random
    start. Two trainings' coordinates are arbitrary, so B is mapped onto A by the orthogonal
    Procrustes rotation fitted on 90% of the words both know (unit vectors; a rotation keeps B's
    own cosines); the table gives the mean cosine of B's OOV vector of each held-out word with
    A's vector of it, beside the same cosine for the other 10% of shared words (how close two
    trainings get for words both saw: the ceiling)."""
    import numpy as np

    import embedkit

    heldout, held = held_out_corpus(tmp)
    rows = []
    for sub in subs:
        a = embedkit.load(_train(model, sub, 1, CORPUS, Path(tmp) / f"oovA-{sub}"))
        b = embedkit.load(_train(model, sub, 2, heldout, Path(tmp) / f"oovB-{sub}"))
        unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)
        shared = [w for w in b.words if w in a.index]
        random.Random(2).shuffle(shared)
        fit, check = shared[len(shared) // 10:], shared[:len(shared) // 10]
        u, _, vt = np.linalg.svd(unit(np.stack([b[w] for w in fit])).T @
                                 unit(np.stack([a[w] for w in fit])))
        rot = u @ vt
        cos = lambda words: float(np.mean(np.sum(unit(np.stack([b[w] for w in words]) @ rot) *
                                                 unit(np.stack([a[w] for w in words])), axis=1)))
        asked = [w for w in held if w in a.index]
        found = [w for w in asked if b.has_vector(w)]
        rows.append((f"{model}/{sub}", len(asked), len(found), f"{cos(found):.3f}",
                     f"{cos(check):.3f}"))
        print(f"# oov {model}/{sub}: {rows[-1][1:]}", file=sys.stderr, flush=True)
    return rows


def _train(model, sub, seed, corpus, base: Path) -> str:
    run(embedkit_cmd(model, sub, seed, corpus, str(base) + ".vec"))
    return str(base) + ".ekv"


def memory(tmp):
    """Peak RSS of embedkit (1 epoch) on the corpus and on 4 copies of it (with 4x the min-count,
    so the vocabulary — and so the model — is the same and only the corpus length differs)."""
    big = Path(tmp) / "dev4.tok"
    with open(big, "wb") as f:
        for _ in range(4):
            f.write(CORPUS.read_bytes())
    rows = []
    for sub in ("none", "char"):
        for name, corpus, k in (("1x", CORPUS, 1), ("4x", big, 4)):
            out = str(Path(tmp) / f"mem-{sub}-{name}.vec")
            wall, rss = run(embedkit_cmd("cbow", sub, 1, corpus, out, epochs=1,
                                         min_count=k * S["min_count"]))
            rows.append((f"cbow/{sub}", name, f"{wall:.1f}", f"{rss:.0f}"))
    return rows


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main():
    global CORPUS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="cbow without subwords, 1 seed")
    ap.add_argument("--configs", default=None, help="e.g. cbow/none,skipgram/char")
    ap.add_argument("--tools", default="embedkit,fastText,gensim")
    ap.add_argument("--memory", action="store_true", help="also peak RSS on 1x vs 4x corpus")
    ap.add_argument("--memory-only", action="store_true", help="only the 1x vs 4x memory table")
    ap.add_argument("--bpe", action="store_true", help="BPE bag table (embedkit, vs char n-grams)")
    ap.add_argument("--bpe-configs", default=None, help="e.g. skipgram/char,skipgram/bpe8k-all")
    ap.add_argument("--oov", action="store_true", help="held-out-word OOV table")
    ap.add_argument("--oov-subs", default=",".join(OOV_SUBS))
    ap.add_argument("--oov-model", default="skipgram")
    ap.add_argument("--only", action="store_true", help="skip the tool comparison table")
    ap.add_argument("--corpus", default=str(CORPUS), help="(to try the script on a small file)")
    a = ap.parse_args()
    CORPUS = Path(a.corpus)
    bpe_configs = [tuple(c.split("/")) for c in a.bpe_configs.split(",")] if a.bpe_configs \
        else BPE_CONFIGS
    oov_subs = a.oov_subs.split(",")
    if not CORPUS.exists():
        sys.exit(f"corpus not found: {CORPUS}")
    configs = CONFIGS
    if a.configs:
        configs = [tuple(c.split("/")) for c in a.configs.split(",")]
    seeds = a.seeds
    if a.quick:
        configs, seeds = [("cbow", "none")], 1
    tools = [t for t in a.tools.split(",") if available(t)]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        warm_up(tmp)
        print(f"dev.tok, dim 100, ws 5, neg 5, 5 epochs, min-count 5, t 1e-4, lr 0.05, 2 threads; "
              f"median (min–max) of {seeds} seed(s); ratio = their time / embedkit's (>1: we win)")
        if not (a.memory_only or a.only):
            table(("config", "tool", "wall s", "speed ratio", "peak RSS MiB", "WS-353 rho",
                   "analogy %"), bench(configs, seeds, tools, tmp))
        if a.memory or a.memory_only:
            print()
            table(("config", "corpus", "wall s (1 epoch)", "peak RSS MiB"), memory(tmp))
        if a.bpe:
            print()
            table(("config", "wall s", "time / char's", "peak RSS MiB", "RSS / char's",
                   "WS-353 rho", "analogy %", "subwords/word"), bench_bpe(bpe_configs, seeds, tmp))
        if a.oov:
            print()
            print(f"OOV: {100 * OOV_SHARE:.0f}% of the vocabulary (words with count >= "
                  f"{OOV_MIN_COUNT}, seeded) removed from the corpus; cosine of the OOV vector "
                  f"with the full model's vector after orthogonal Procrustes on shared words")
            table(("config", "held out", "with vector", "OOV cosine", "shared-word cosine"),
                  oov(a.oov_model, oov_subs, tmp))


if __name__ == "__main__":
    main()
