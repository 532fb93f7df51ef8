"""Benchmark `embedkit classify` against fastText supervised (the `fasttext` Python package) in the
same run, on ../shared/data/probe pros_cons and movie_reviews; a third row, ``embedkit nb``, is
``classify train --model nb`` (NB-weighted logistic regression) at the same --word-ngrams and
--threads (it has no epochs, lr or dim).

Both sides run as whole processes (timed from spawn to exit, peak RSS from wait4), at the same
settings (-epoch 25 -lr 0.5 -wordNgrams 2 -dim 100 -thread 2, fastText's other supervised
defaults), each writing its model with its own writer (fastText ``save_model`` .bin, embedkit's
model file). Tools alternate within each repetition so machine noise hits both alike; times are
medians of 3. Accuracy is P@1 on the test split from each tool's own ``test``. Predict throughput
is whole-process lines/s of each tool labelling the test texts repeated to ``--predict-lines``
lines (fastText through ``model.predict`` on batches of 1024 lines, read and written as text).

    python benchmarks/bench_classify.py            # both sets, 3 repetitions (~10 min)
    python benchmarks/bench_classify.py --quick    # 2 epochs, 1 repetition: checks it runs
    python benchmarks/bench_classify.py --memory   # peak RSS on 1x and 8x the training lines
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import procs  # benchmarks/procs.py: each tool is measured through its launcher

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "probe"
SETS = ["pros_cons", "movie_reviews"]

FT_TRAIN = """
import sys, fasttext
train, out, epoch, lr, ngrams, dim, threads = sys.argv[1:8]
m = fasttext.train_supervised(input=train, epoch=int(epoch), lr=float(lr), wordNgrams=int(ngrams),
                              dim=int(dim), thread=int(threads), verbose=0)
m.save_model(out)
"""
FT_PREDICT = """
import sys, fasttext
model, inp = sys.argv[1:3]
m = fasttext.load_model(model)
o = sys.stdout
with open(inp, encoding="utf-8") as f:
    batch = []
    def flush():
        labels, _ = m.predict(batch, k=1)
        o.write("".join(l[0] + "\\n" if l else "\\n" for l in labels))
        batch.clear()
    for line in f:
        batch.append(line.rstrip("\\n"))
        if len(batch) == 1024:
            flush()
    if batch:
        flush()
"""
FT_TEST = """
import sys, fasttext
print(fasttext.load_model(sys.argv[1]).test(sys.argv[2])[1])
"""


def run(cmd, stdout=subprocess.DEVNULL) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    child, _, err = procs.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    if child.code != 0:
        raise RuntimeError(f"{cmd[:5]} failed: {err.decode(errors='replace')[-2000:]}")
    return child.wall, child.rss_mib


def prepare(name: str, tmp: Path, predict_lines: int) -> dict:
    """fastText-format train/test files (both tools read them) and the predict input."""
    out = {}
    for split in ("train", "test"):
        src = DATA / f"{name}.{split}.tsv"
        dst = tmp / f"{name}.{split}.txt"
        with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as o:
            for line in f:
                label, _, text = line.rstrip("\n").partition("\t")
                o.write(f"__label__{label} {text}\n")
        out[split] = str(dst)
    texts = [line.rstrip("\n").partition("\t")[2]
             for line in open(DATA / f"{name}.test.tsv", encoding="utf-8")]
    pred = tmp / f"{name}.predict.txt"
    with open(pred, "w", encoding="utf-8") as o:
        for i in range(predict_lines):
            o.write(texts[i % len(texts)] + "\n")
    out["predict"] = str(pred)
    return out


def bench(name: str, files: dict, tmp: Path, a) -> list[dict]:
    s = [str(a.epochs), str(a.lr), str(a.word_ngrams), str(a.dim), str(a.threads)]
    ft_model, ek_model = str(tmp / f"{name}.bin"), str(tmp / f"{name}.ekc")
    nb_model = str(tmp / f"{name}.ekn")
    cmds = {
        "fastText": ([sys.executable, "-c", FT_TRAIN, files["train"], ft_model, *s],
                     [sys.executable, "-c", FT_PREDICT, ft_model, files["predict"]]),
        "embedkit": ([sys.executable, "-m", "embedkit", "classify", "train", files["train"],
                      "-o", ek_model, "--epochs", s[0], "--lr", s[1], "--word-ngrams", s[2],
                      "--dim", s[3], "--threads", s[4], "-q"],
                     [sys.executable, "-m", "embedkit", "classify", "predict", ek_model,
                      files["predict"]]),
        "embedkit nb": ([sys.executable, "-m", "embedkit", "classify", "train", files["train"],
                         "-o", nb_model, "--model", "nb", "--word-ngrams", s[2],
                         "--threads", s[4], "-q"],
                        [sys.executable, "-m", "embedkit", "classify", "predict", nb_model,
                         files["predict"]]),
    }
    models = {"fastText": ft_model, "embedkit": ek_model, "embedkit nb": nb_model}
    times = {t: [] for t in cmds}
    rss = {t: [] for t in cmds}
    rates = {t: [] for t in cmds}
    for rep in range(a.repeat):
        order = list(cmds) if rep % 2 == 0 else list(cmds)[::-1]
        for tool in order:
            wall, peak = run(cmds[tool][0])
            times[tool].append(wall)
            rss[tool].append(peak)
        for tool in order:
            with open(tmp / f"{tool}.pred", "wb") as out:
                wall, _ = run(cmds[tool][1], stdout=out)
            rates[tool].append(a.predict_lines / wall)
    acc = {"fastText": float(subprocess.run([sys.executable, "-c", FT_TEST, ft_model, files["test"]],
                                            capture_output=True, text=True, check=True).stdout)}
    for tool in ("embedkit", "embedkit nb"):
        acc[tool] = json.loads(subprocess.run(
            [sys.executable, "-m", "embedkit", "classify", "test", models[tool], files["test"],
             "--json", "-q"], capture_output=True, text=True, check=True).stdout)["precision_at_k"]
    agree = sum(x == y for x, y in zip(open(tmp / "fastText.pred"), open(tmp / "embedkit.pred")))
    size = {tool: os.path.getsize(path) for tool, path in models.items()}
    rows = []
    for tool in cmds:
        rows.append({"set": name, "tool": tool, "accuracy": 100 * acc[tool],
                     "model_mb": size[tool] / 2**20,
                     "train_s": statistics.median(times[tool]), "rss": max(rss[tool]),
                     "lines_s": statistics.median(rates[tool]),
                     "agree": 100 * agree / a.predict_lines})
    return rows


def memory(tmp: Path) -> None:
    """Peak RSS of `classify train` (1 epoch) on pros_cons repeated 1x and 8x: the same
    vocabulary and n-grams, 8 times the lines; memory must not follow the file size."""
    files = prepare("pros_cons", tmp, 1)
    text = Path(files["train"]).read_bytes()
    print("\n| copies of pros_cons train | file MiB | peak RSS MiB |\n|---:|---:|---:|")
    for copies in (1, 8):
        path = tmp / f"x{copies}.txt"
        path.write_bytes(text * copies)
        _, rss = run([sys.executable, "-m", "embedkit", "classify", "train", str(path), "-o",
                      str(tmp / "m.ekc"), "--epochs", "1", "--word-ngrams", "2", "-q"])
        print(f"| {copies} | {path.stat().st_size / 2**20:.1f} | {rss:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 epochs, 1 repetition, 20k predict lines")
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--word-ngrams", type=int, default=2)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--predict-lines", type=int, default=200_000)
    ap.add_argument("--memory", action="store_true", help="only: peak RSS on 1x and 8x the data")
    a = ap.parse_args()
    if a.memory:
        with tempfile.TemporaryDirectory(prefix="bench-classify-") as tmp:
            memory(Path(tmp))
        return
    if a.quick:
        a.epochs, a.repeat, a.predict_lines = 2, 1, 20_000
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    with tempfile.TemporaryDirectory(prefix="bench-classify-") as tmp:
        rows = []
        for name in a.sets:
            rows += bench(name, prepare(name, Path(tmp), a.predict_lines), Path(tmp), a)
    print(f"\nfastText supervised vs embedkit classify: -epoch {a.epochs} -lr {a.lr} -wordNgrams "
          f"{a.word_ngrams} -dim {a.dim} -thread {a.threads}; times median of {a.repeat}, whole "
          f"process; predict on {a.predict_lines:,} lines\n")
    print("| set | tool | test accuracy % | train s | train ratio | peak RSS MiB | model MiB "
          "| predict lines/s | predict ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ft = next(x for x in rows if x["set"] == r["set"] and x["tool"] == "fastText")
        print(f"| {r['set']} | {r['tool']} | {r['accuracy']:.2f} | {r['train_s']:.2f} | "
              f"{r['train_s'] / ft['train_s']:.2f} | {r['rss']:.0f} | {r['model_mb']:.0f} | "
              f"{r['lines_s']:,.0f} | "
              f"{r['lines_s'] / ft['lines_s']:.2f} |")
    for name in a.sets:
        r = next(x for x in rows if x["set"] == name)
        print(f"\n{name}: fastText and embedkit (fastText-style) give the same top label on "
              f"{r['agree']:.1f}% of predict lines")
    print("\nratio = embedkit (or embedkit nb) / fastText (train: lower is better; predict: "
          "higher is better)")


if __name__ == "__main__":
    main()
