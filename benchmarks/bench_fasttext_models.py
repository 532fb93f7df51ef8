"""`embedkit classify predict` on fastText's own model files (`.bin`, quantized `.ftz`) against
fastText predicting with the same files, in the same run.

For each set of ../shared/data/probe, fastText trains a supervised model (-epoch 25 -lr 0.5
-wordNgrams 2 -dim 100 -thread 2, saved as .bin) and quantizes it (-qnorm -cutoff 100000, .ftz);
then both tools label the test texts repeated to ``--predict-lines`` lines with each file, as
whole processes (start-up and model loading included), alternating, median of ``--repeat``.
Also reports how many lines get the same top label (fastText's own predictions: expect 100%).

    python benchmarks/bench_fasttext_models.py           # both sets, 3 repetitions
    python benchmarks/bench_fasttext_models.py --quick   # 2 epochs, 1 repetition, 20k lines
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classify import FT_PREDICT, SETS, prepare, run  # noqa: E402

FT_MODELS = """
import sys, fasttext
train, out, epoch = sys.argv[1:4]
m = fasttext.train_supervised(input=train, epoch=int(epoch), lr=0.5, wordNgrams=2, dim=100,
                              thread=2, verbose=0)
m.save_model(out + ".bin")
m.quantize(input=train, qnorm=True, cutoff=100000, retrain=False, verbose=0)
m.save_model(out + ".ftz")
"""


def bench(name: str, files: dict, tmp: Path, a) -> list[dict]:
    base = str(tmp / name)
    subprocess.run([sys.executable, "-c", FT_MODELS, files["train"], base, str(a.epochs)],
                   check=True)
    rows = []
    for ext in (".bin", ".ftz"):
        model = base + ext
        cmds = {"fastText": [sys.executable, "-c", FT_PREDICT, model, files["predict"]],
                "embedkit": [sys.executable, "-m", "embedkit", "classify", "predict", model,
                             files["predict"]]}
        rates = {t: [] for t in cmds}
        rss = {t: [] for t in cmds}
        for rep in range(a.repeat):
            for tool in (list(cmds) if rep % 2 == 0 else list(cmds)[::-1]):
                with open(tmp / f"{tool}.pred", "wb") as out:
                    wall, peak = run(cmds[tool], stdout=out)
                rates[tool].append(a.predict_lines / wall)
                rss[tool].append(peak)
        with open(tmp / "fastText.pred") as f, open(tmp / "embedkit.pred") as g:
            agree = sum(x == y for x, y in zip(f, g))
        for tool in cmds:
            rows.append({"set": name, "model": ext, "tool": tool,
                         "lines_s": statistics.median(rates[tool]), "rss": max(rss[tool]),
                         "agree": 100 * agree / a.predict_lines})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 epochs, 1 repetition, 20k lines")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--predict-lines", type=int, default=200_000)
    a = ap.parse_args()
    if a.quick:
        a.epochs, a.repeat, a.predict_lines = 2, 1, 20_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ftmodels-") as tmp:
        for name in SETS:
            rows += bench(name, prepare(name, Path(tmp), a.predict_lines), Path(tmp), a)
    print(f"predict on {a.predict_lines:,} lines, whole process, median of {a.repeat}\n")
    print("| set | model | tool | lines/s | ratio (embedkit / fastText) | peak RSS MiB "
          "| same top label |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        ref = next(x for x in rows if x["set"] == r["set"] and x["model"] == r["model"]
                   and x["tool"] == "fastText")
        print(f"| {r['set']} | {r['model']} | {r['tool']} | {r['lines_s']:,.0f} | "
              f"{r['lines_s'] / ref['lines_s']:.2f} | {r['rss']:.0f} | {r['agree']:.2f}% |")


if __name__ == "__main__":
    main()
