"""What pretraining on dev.txt / dev.tok buys a classifier (issue 10), in one table: every route
that uses a pretrained artifact (`classify train --pretrained-vectors`, `probe` on word vectors,
`probe` on the encoder, `encoder finetune`) beside the from-scratch classifiers (fastText
supervised, `classify train`, `classify train --model nb`), measured in the same run, on
../shared/data/probe pros_cons and movie_reviews at full size and on small labelled subsets (the
first N lines of a shuffle of TRAIN seeded 0, the same for every --seeds seed, which seeds
training, folds and fastText's shuffled copy; the test file is always the whole one).

The pretrained artifacts are built once into --workdir (default: a folder under the system temp
dir named after their settings) and reused: a BPE tokenizer and an MLM encoder on dev.txt, cbow
and skip-gram char-n-gram vectors on dev.tok. Every finished cell (route, set, size, seed) is
cached in WORKDIR/cells.json, so a rerun only runs what is missing. Accuracy only: no timings.

    python benchmarks/bench_pretraining.py --seeds 3       # the README table (~40 min, 2 cores)
    python benchmarks/bench_pretraining.py --train-sizes 1000 4000 --routes probe-enc finetune-3e-4
    python benchmarks/bench_pretraining.py --quick         # tiny settings: checks it runs
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = SHARED / "probe"
CORPUS = SHARED / "corpus"
SETS = ["pros_cons", "movie_reviews"]
EK = [sys.executable, "-m", "embedkit"]

FT = """
import json, sys, fasttext
train, test, epoch, lr, ngrams, dim, threads, seed = sys.argv[1:9]
m = fasttext.train_supervised(input=train, epoch=int(epoch), lr=float(lr), wordNgrams=int(ngrams),
                              dim=int(dim), thread=int(threads), seed=int(seed), verbose=0)
print(json.dumps({"test": m.test(test)[1]}))
"""


def ek(*args) -> dict:
    """One `embedkit ... --json -q` run; its JSON summary."""
    cmd = [*EK, *map(str, args), "--json", "-q"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:8])} ... failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def settings(a) -> dict:
    """Everything the pretrained artifacts depend on (the workdir is named after it)."""
    if a.quick:
        return {"corpus_lines": 20000, "vocab_size": 1000, "enc_steps": 20, "enc_lr": 3e-3,
                "vec_dim": 100, "vec_epochs": 1, "seed": 0}
    return {"corpus_lines": None, "vocab_size": 8000, "enc_steps": 1500, "enc_lr": 3e-3,
            "vec_dim": 100, "vec_epochs": 5, "seed": 0}


def corpus(name: str, work: Path, s: dict) -> Path:
    """dev.txt / dev.tok, or their first corpus_lines lines (--quick)."""
    src = CORPUS / name
    if s["corpus_lines"] is None:
        return src
    dst = work / name
    if not dst.exists():
        with open(src, encoding="utf-8") as f:
            dst.write_text("".join(line for _, line in zip(range(s["corpus_lines"]), f)),
                           encoding="utf-8")
    return dst


def pretrain(work: Path, s: dict, threads: int) -> dict:
    """Build (or reuse) TOKDIR, ENCDIR and the two vector files; their summaries."""
    rec_path = work / "artifacts.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    txt, tok = corpus("dev.txt", work, s), corpus("dev.tok", work, s)
    seed = ["--threads", threads, "--seed", s["seed"]]
    steps = {
        "bpe": ["bpe", "learn", txt, "-o", work / "tok", "--vocab-size", s["vocab_size"],
                "--lowercase", "--threads", threads],
        "encoder": ["encoder", "train", txt, "-t", work / "tok", "-o", work / "enc", "--steps",
                    s["enc_steps"], "--lr", s["enc_lr"], *seed],
        "cbow": ["train", tok, "-o", work / "cbow", "--dim", s["vec_dim"], "--epochs",
                 s["vec_epochs"], *seed],
        "sg_char": ["train", tok, "-o", work / "sg_char", "--model", "skipgram", "--subwords",
                    "char", "--dim", s["vec_dim"], "--epochs", s["vec_epochs"], *seed],
    }
    for name, args in steps.items():
        if name not in rec:
            print(f"pretraining {name} ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            out = ek(*args)
            rec[name] = {"command": "embedkit " + " ".join(map(str, args)), "summary": out,
                         "wall_s": round(time.perf_counter() - t, 1)}
            rec_path.write_text(json.dumps(rec, indent=1))
    return rec


def read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line for line in f if line.strip()]


def cell_files(name: str, size: str, work: Path, seed: int) -> dict | None:
    """TRAIN (whole, or the first N lines of a seeded shuffle), TEST, and fastText-format
    copies: TRAIN shuffled by ``seed`` (fastText reads its file in order, and both sets are
    sorted by label) and TEST. None when N is not below the train file's size."""
    lines = read_lines(DATA / f"{name}.train.tsv")
    data = work / "data"
    data.mkdir(exist_ok=True)
    if size == "full":
        train = DATA / f"{name}.train.tsv"
    else:
        n = int(size)
        if n >= len(lines):
            return None
        lines = lines[:]
        random.Random(0).shuffle(lines)
        lines = lines[:n]
        if len({line.split("\t", 1)[0] for line in lines}) < 2:
            raise RuntimeError(f"{name}: the first {n} shuffled lines hold one label")
        train = data / f"{name}.n{n}.tsv"
        if not train.exists():
            train.write_text("".join(lines), encoding="utf-8")
    test = DATA / f"{name}.test.tsv"
    ft_train, ft_test = data / f"{name}.{size}.s{seed}.ft.txt", data / f"{name}.test.ft.txt"
    if not ft_train.exists():
        shuffled = lines[:]
        random.Random(seed).shuffle(shuffled)
        ft_train.write_text("".join(map(fasttext_line, shuffled)), encoding="utf-8")
    if not ft_test.exists():
        ft_test.write_text("".join(map(fasttext_line, read_lines(test))), encoding="utf-8")
    return {"train": train, "test": test, "ft_train": ft_train, "ft_test": ft_test,
            "n_train": len(lines)}


def fasttext_line(tsv: str) -> str:
    label, _, text = tsv.rstrip("\n").partition("\t")
    return f"__label__{label} {text}\n"


def classify(f: dict, work: Path, key: str, seed: int, *opts) -> dict:
    model = work / "models" / f"{key}.ekc"
    model.parent.mkdir(exist_ok=True)
    ek("classify", "train", f["train"], "-o", model, "--seed", seed, *opts)
    acc = ek("classify", "test", model, f["test"])["accuracy"]
    model.unlink()
    return {"test": acc}


def probe(features: Path, f: dict, seed: int, threads: int) -> dict:
    r = ek("probe", features, f["train"], f["test"], "--seed", seed, "--threads", threads)
    return {"test": r["test_accuracy"], "cv": r["cv_accuracy"], "c": r["c"]}


def finetune(f: dict, work: Path, key: str, seed: int, threads: int, lr: str, epochs: int) -> dict:
    model = work / "models" / f"{key}.ekc"
    model.parent.mkdir(exist_ok=True)
    s = ek("encoder", "finetune", work / "enc", f["train"], "-o", model, "--lr", lr, "--epochs",
           epochs, "--seed", seed, "--threads", threads)
    acc = ek("classify", "test", model, f["test"])["accuracy"]
    model.unlink()
    Path(f"{model}.ckpt").unlink(missing_ok=True)
    return {"test": acc, "lines_truncated": s["lines_truncated"], "max_len": s["max_len"]}


def routes(a) -> list[tuple[str, str, object]]:
    """(id, table label, run(files, work, key, seed) -> {"test": accuracy, ...})."""
    t = a.threads
    sup = ["--epochs", a.epochs, "--lr", a.lr, "--word-ngrams", 2, "--dim", 100, "--threads", t]
    out = [
        ("fasttext", f"fastText supervised, from scratch (-epoch {a.epochs} -lr {a.lr} "
                     "-wordNgrams 2 -dim 100; TRAIN shuffled, seeded)",
         lambda f, w, k, s: json.loads(subprocess.run(
             [sys.executable, "-c", FT, str(f["ft_train"]), str(f["ft_test"]), str(a.epochs),
              str(a.lr), "2", "100", str(t), str(s)],
             capture_output=True, text=True, check=True).stdout)),
        ("scratch", "`classify train`, from scratch (same settings)",
         lambda f, w, k, s: classify(f, w, k, s, *sup)),
        ("nb", "`classify train --model nb --word-ngrams 2`, from scratch",
         lambda f, w, k, s: classify(f, w, k, s, "--model", "nb", "--word-ngrams", 2,
                                     "--threads", t)),
        ("pre-cbow", "`classify train --pretrained-vectors` cbow (same settings)",
         lambda f, w, k, s: classify(f, w, k, s, *sup, "--pretrained-vectors", w / "cbow.ekv")),
        ("pre-sg", "`classify train --pretrained-vectors` skip-gram char (same settings)",
         lambda f, w, k, s: classify(f, w, k, s, *sup, "--pretrained-vectors",
                                     w / "sg_char.ekv")),
    ]
    for g in a.gentle:
        ep, lr = g.split(",")
        opts = ["--epochs", ep, "--lr", lr, "--word-ngrams", 2, "--dim", 100, "--threads", t]
        out += [
            (f"g{g}-scratch", f"`classify train --epochs {ep} --lr {lr}`, from scratch",
             lambda f, w, k, s, o=opts: classify(f, w, k, s, *o)),
            (f"g{g}-cbow", f"`classify train --epochs {ep} --lr {lr} --pretrained-vectors` cbow",
             lambda f, w, k, s, o=opts: classify(f, w, k, s, *o, "--pretrained-vectors",
                                                 w / "cbow.ekv")),
            (f"g{g}-sg", f"`classify train --epochs {ep} --lr {lr} --pretrained-vectors` "
                         "skip-gram char",
             lambda f, w, k, s, o=opts: classify(f, w, k, s, *o, "--pretrained-vectors",
                                                 w / "sg_char.ekv")),
        ]
    out += [
        ("probe-cbow", "`probe` on the cbow vectors: test (10-fold cv)",
         lambda f, w, k, s: probe(w / "cbow.ekv", f, s, t)),
        ("probe-sg", "`probe` on the skip-gram char vectors: test (cv)",
         lambda f, w, k, s: probe(w / "sg_char.ekv", f, s, t)),
        ("probe-enc", "`probe` on the MLM encoder (last layer, mean pool): test (cv)",
         lambda f, w, k, s: probe(w / "enc", f, s, t)),
    ]
    for lr in a.finetune_lr:
        out.append((f"finetune-{lr}", f"`encoder finetune --lr {lr}` ({a.finetune_epochs} "
                                      "epochs) of that encoder",
                    lambda f, w, k, s, lr=lr: finetune(f, w, k, s, t, lr, a.finetune_epochs)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, help="artifacts, subsets and the cell cache "
                    "(default: TMP/embedkit-bench-pretraining-<settings hash>)")
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    ap.add_argument("--train-sizes", nargs="+", default=["full", "1000", "4000"],
                    help="'full' or a number of lines (skipped where not below the set's size)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1; cells are their mean")
    ap.add_argument("--routes", nargs="+", help="only these route ids (default: all)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--gentle", nargs="*", default=["25,0.1"], metavar="EPOCHS,LR",
                    help="extra classify settings, from scratch and with each vector file (a "
                         "lower lr keeps more of the pretrained rows; 25,0.1 beat fastText's "
                         "defaults 5,0.1 and 10,0.2 with pretrained vectors)")
    ap.add_argument("--finetune-lr", nargs="*", default=["3e-4", "5e-5"])
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny pretraining, 300-line train "
                    "subsets, 2 classify epochs, 1 finetune epoch: checks that it runs")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    a = ap.parse_args()
    if not DATA.is_dir() or not CORPUS.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    if a.quick:
        a.train_sizes, a.epochs, a.finetune_epochs, a.finetune_lr = ["300"], 2, 1, ["3e-4"]
    s = settings(a)
    digest = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:10]
    work = a.workdir or Path(tempfile.gettempdir()) / f"embedkit-bench-pretraining-{digest}"
    work.mkdir(parents=True, exist_ok=True)
    table = routes(a)
    if a.routes:
        unknown = set(a.routes) - {r[0] for r in table}
        if unknown:
            sys.exit(f"unknown route(s) {sorted(unknown)}; known: {[r[0] for r in table]}")
        table = [r for r in table if r[0] in a.routes]
    started = time.perf_counter()
    art = pretrain(work, s, a.threads)
    cache_path = work / "cells.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    cols = [(n, size) for n in a.sets for size in a.train_sizes]
    sizes, results, todo = {}, {}, []
    for n, size in cols:
        for seed in range(a.seeds):
            f = cell_files(n, size, work, seed)
            if f is not None:
                sizes[n, size] = f["n_train"]
                todo += [(i, rid, fn, n, size, seed, f) for i, (rid, _, fn) in enumerate(table)]

    def cost(task):
        """Cheap cells first, then the encoder's: a run cut short still fills most columns."""
        i, rid, _, n, size, seed, f = task
        heavy = rid == "probe-enc" or rid.startswith("finetune")
        return (heavy, f["n_train"] if heavy else 0, i, seed)

    for i, rid, fn, n, size, seed, f in sorted(todo, key=cost):
        epochs = a.finetune_epochs if rid.startswith("finetune") else a.epochs
        key = f"{rid}|{n}|{size}|{seed}|e{epochs}|lr{a.lr}"
        if key not in cache:
            print(f"{n} {size} seed {seed}: {rid} ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            cache[key] = fn(f, work, key.replace("|", "_"), seed)
            cache[key]["wall_s"] = round(time.perf_counter() - t, 1)
            cache_path.write_text(json.dumps(cache, indent=1))
        results.setdefault((rid, n, size), []).append(cache[key])
    wall = time.perf_counter() - started
    if a.json:
        print(json.dumps({"settings": s, "workdir": str(work), "artifacts": art,
                          "cells": [{"route": r, "set": n, "size": size, "n_train": sizes[n, size],
                                     "seeds": v} for (r, n, size), v in results.items()]},
                         indent=1))
        return
    shown = sorted((c for c in cols if c in sizes), key=lambda c: (SETS.index(c[0]), sizes[c]))
    print("\nTest accuracy %" + (f", mean of {a.seeds} seeds" if a.seeds > 1 else "") +
          "; probe rows: test (10-fold cv on TRAIN)\n")
    print("| route | " + " | ".join(f"{n} {sizes[n, size]:,}" for n, size in shown) + " |")
    print("|---|" + "---:|" * len(shown))
    for rid, label, _ in table:
        cells = []
        for n, size in shown:
            v = results.get((rid, n, size))
            if not v:
                cells.append("–")
                continue
            cell = f"{100 * statistics.mean(x['test'] for x in v):.1f}"
            if "cv" in v[0]:
                cell += f" ({100 * statistics.mean(x['cv'] for x in v):.1f})"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")
    cut = {(n, size): v[0] for (r, n, size), v in results.items() if r.startswith("finetune")}
    for (n, size), v in cut.items():
        if v["lines_truncated"]:
            print(f"\n{n} {sizes[n, size]:,}: `encoder finetune` cut {v['lines_truncated']:,} "
                  f"TRAIN lines to their first {v['max_len']} pieces (`probe` reads whole lines)")
    for n, size in cols:
        if (n, size) not in sizes:
            print(f"\n{n} {size}: not below the train file's size, skipped")
    print("\nPretrained artifacts (" + str(work) + "):")
    for name, r in art.items():
        extra = ""
        if name == "encoder":
            e = r["summary"]
            extra = (f"  -> held-out MLM loss {e['heldout_loss']:.3f} nats vs unigram entropy "
                     f"{e['unigram_entropy']:.3f}")
        cmd = r["command"].replace(str(CORPUS) + "/", "").replace(str(work) + "/", "")
        print(f"  {cmd}{extra}")
    print(f"\nwall {wall:.0f} s (cells cached in {cache_path})")


if __name__ == "__main__":
    main()
