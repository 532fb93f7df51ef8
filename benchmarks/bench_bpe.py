"""BPE learn and encode: embedkit vs HF tokenizers, sentencepiece and subword-nmt, same run.

Learn rows time the whole process (start-up, reading, counting, merges, writing) on the corpus,
byte-level, min frequency 2, 2 threads where the tool has them; tools alternate within each
repetition and the median is reported. Peak memory: the largest process's max RSS (``wait4``) and
the sampled peak of the RSS summed over the process tree (counts pages shared by forked workers
more than once). Encode rows: MB/s over every line of the corpus without its line ending, fresh
tokenizer (empty cache), in this process. Parity: embedkit loads HF's own vocab.json/merges.txt
and must give HF's ids on every line; round trip: decode(encode(line)) == line.

    python benchmarks/bench_bpe.py [--corpus ../shared/data/corpus/dev.txt] [--sizes 8000 32000]
                                   [--repeat 3] [--snmt-sizes 8000] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "dev.txt"

HF_LEARN = """
import sys
from tokenizers import ByteLevelBPETokenizer
t = ByteLevelBPETokenizer()
t.train([sys.argv[1]], vocab_size=int(sys.argv[2]), min_frequency=2, show_progress=False)
t.save_model(sys.argv[3])
"""

SPM_LEARN = """
import sys
import sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[3] + "/spm", model_type="bpe",
                               vocab_size=int(sys.argv[2]), num_threads=int(sys.argv[4]),
                               minloglevel=2)
"""

SNMT_LEARN = """
import sys
from subword_nmt.learn_bpe import learn_bpe
learn_bpe(sys.stdin, sys.stdout, int(sys.argv[1]), min_frequency=2)
"""


def measure(cmd: list[str], stdin=None, stdout=subprocess.DEVNULL) -> tuple[float, float, float]:
    """(seconds, max RSS MB of the largest process, peak RSS MB summed over the process tree)."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    peak = [0.0]
    done = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
            while not done.is_set():
                total = 0
                for p in [root] + root.children(recursive=True):
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], total / 2**20)
                time.sleep(0.02)
        except psutil.Error:
            pass

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    done.set()
    th.join()
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return seconds, usage.ru_maxrss / 1024, peak[0]


def learn_commands(corpus: Path, size: int, out: Path, threads: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "embedkit": [py, "-m", "embedkit", "bpe", "learn", str(corpus), "-o", str(out / "ek"),
                     "--vocab-size", str(size), "--threads", str(threads), "--quiet"],
        "HF tokenizers": [py, "-c", HF_LEARN, str(corpus), str(size), str(out)],
        "sentencepiece": [py, "-c", SPM_LEARN, str(corpus), str(size), str(out), str(threads)],
    }


def bench_learn(corpus, sizes, snmt_sizes, repeat, threads, tmp):
    rows = []
    for size in sizes:
        out = tmp / f"v{size}"
        out.mkdir(exist_ok=True)
        cmds = learn_commands(corpus, size, out, threads)
        results = {name: [] for name in cmds}
        for _ in range(repeat):
            for name, cmd in cmds.items():  # alternate tools within a repetition
                results[name].append(measure(cmd))
        if size in snmt_sizes:
            with open(corpus, "rb") as f, open(out / "codes", "wb") as codes:
                results["subword-nmt"] = [measure([sys.executable, "-c", SNMT_LEARN, str(size)],
                                                  f, codes)]
        for name, runs in results.items():
            secs = statistics.median(r[0] for r in runs)
            rows.append((size, name, secs, max(r[1] for r in runs), max(r[2] for r in runs)))
    return rows


def merges_identical(tmp: Path, size: int) -> str:
    ek = (tmp / f"v{size}" / "ek" / "merges.txt").read_text(encoding="utf-8")
    hf = (tmp / f"v{size}" / "merges.txt").read_text(encoding="utf-8")
    if ek == hf:
        return f"identical ({ek.count(chr(10)) - 1} merges)"
    a, b = ek.split("\n"), hf.split("\n")
    first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y) if len(a) == len(b) else "length"
    return f"DIFFERENT (first difference at line {first})"


def bench_encode(corpus: Path, tmp: Path, size: int, threads: int):
    import sentencepiece as spm
    from tokenizers import ByteLevelBPETokenizer

    from embedkit import BPETokenizer

    lines = corpus.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    mb = sum(len(line.encode()) for line in lines) / 1e6
    d = tmp / f"v{size}"
    BPETokenizer.load(d).encode("warm up the kernels")
    rows = []

    def timed(f):
        t = time.perf_counter()
        out = f()
        return out, time.perf_counter() - t

    hf = ByteLevelBPETokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    hf_ids, s = timed(lambda: [e.ids for e in hf.encode_batch(lines)])
    rows.append(("HF tokenizers encode_batch (parallel)", s, mb / s))
    ek = BPETokenizer.load(d)  # HF's files: no embedkit.json
    ek_ids, s = timed(lambda: ek.encode_batch(lines))
    rows.append(("embedkit encode_batch, HF's files, 1 process", s, mb / s))
    ek2 = BPETokenizer.load(d)
    _, s = timed(lambda: ek2.encode_batch(lines, threads=threads))
    rows.append((f"embedkit encode_batch, threads={threads}", s, mb / s))
    sp = spm.SentencePieceProcessor(model_file=str(d / "spm.model"))
    _, s = timed(lambda: sp.encode(lines, num_threads=threads))
    rows.append((f"sentencepiece encode, num_threads={threads}", s, mb / s))
    s, _, _ = measure([sys.executable, "-m", "embedkit", "bpe", "encode", "-t", str(d / "ek"),
                       "--ids", str(corpus)])
    rows.append(("embedkit bpe encode --ids (whole process)", s, mb / s))
    mismatches = sum(a != b for a, b in zip(ek_ids, hf_ids)) + abs(len(ek_ids) - len(hf_ids))
    failures = sum(ek.decode(ids) != line for ids, line in zip(ek_ids, lines))
    hf_failures = sum(hf.decode(ids) != line for ids, line in zip(hf_ids, lines))
    return rows, mismatches, failures, hf_failures, len(lines), mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8000, 32000])
    ap.add_argument("--snmt-sizes", type=int, nargs="*", default=[8000],
                    help="vocab sizes also learned with subword-nmt (slow: ~20 s at 8k)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--encode-size", type=int, default=None, help="default: the largest size")
    a = ap.parse_args()
    if not a.corpus.is_file():
        raise SystemExit(f"corpus not found: {a.corpus}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_bpe."))
    print(f"corpus {a.corpus} ({a.corpus.stat().st_size / 1e6:.1f} MB), threads {a.threads}, "
          f"median of {a.repeat}; scratch {tmp}", flush=True)

    rows = bench_learn(a.corpus, a.sizes, set(a.snmt_sizes), a.repeat, a.threads, tmp)
    print("\n## learn (whole process)\n")
    print("| vocab | tool | seconds | embedkit speed-up | max RSS MB | tree RSS MB |")
    print("|---|---|---|---|---|---|")
    for size in a.sizes:
        ek = next(r for r in rows if r[0] == size and r[1] == "embedkit")
        for r in (r for r in rows if r[0] == size):
            print(f"| {size} | {r[1]} | {r[2]:.2f} | {r[2] / ek[2]:.2f}x | {r[3]:.0f} | {r[4]:.0f} |")
    for size in a.sizes:
        print(f"\nmerges.txt embedkit vs HF at {size}: {merges_identical(tmp, size)}")

    size = a.encode_size or max(a.sizes)
    enc, mismatches, failures, hf_failures, n, mb = bench_encode(a.corpus, tmp, size, a.threads)
    print(f"\n## encode ({n} lines, {mb:.1f} MB without line endings, HF-trained vocab {size})\n")
    print("| tool | seconds | MB/s | vs HF |")
    print("|---|---|---|---|")
    hf_rate = enc[0][2]
    for name, s, rate in enc:
        print(f"| {name} | {s:.2f} | {rate:.1f} | {rate / hf_rate:.2f}x |")
    print(f"\nid mismatches vs HF (embedkit loading HF's merges): {mismatches} of {n} lines")
    print(f"round-trip failures: embedkit {failures}, HF {hf_failures}")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
