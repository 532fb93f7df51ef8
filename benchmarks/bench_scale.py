"""What Dask costs and gives for `bpe learn`: a generated corpus of gzipped shards (dev.txt's lines
shuffled and repeated up to --gb), learned single-node and on a `local:N` cluster of the same
machine, merges checked identical.

    python benchmarks/bench_scale.py                     # 2 GB, 16 shards, local:2, median of 3
    python benchmarks/bench_scale.py --gb 0.02 --shards 4 --repeat 1   # a quick check that it runs

Figures: single-node MB/s (uncompressed corpus bytes / whole-process wall time) and peak RSS;
`local:N` / single-node wall-time ratio (the engine's overhead on the same cores; goal <= 1.25);
counting throughput per worker (MB/s of one worker process counting one shard, and over the
whole cluster run) and each worker's peak RSS, which should not grow with --gb (a worker holds
one shard's word table at a time) — run two sizes to see it; `train --scheduler`'s
vocabulary count (whitespace words) per worker; and `encoder embed --out-dir` (an encoder of the
default architecture, one training step: speed does not depend on the weights) on the first
--embed-mb of the corpus in 2N plain shards: rows (pieces) per second with --threads 1 (one
worker's rate), --threads N and local:N, outputs checked identical for --threads 1 and local:N.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import procs  # benchmarks/procs.py: each tool is measured through its launcher

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "dev.txt"


def generate(out: Path, gb: float, shards: int, seed: int = 0) -> int:
    """Write shards 000.txt.gz...; returns the uncompressed size. Same files for the same args."""
    lines = DEV.read_bytes().splitlines(keepends=True)
    target = int(gb * 1e9)
    per_shard = -(-target // shards)
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    total, order = 0, []
    for k in range(shards):
        size = 0
        with gzip.open(out / f"{k:03d}.txt.gz", "wb", compresslevel=1) as f:
            while size < per_shard and total < target:
                if not order:
                    order = list(range(len(lines)))
                    rng.shuffle(order)
                chunk = b"".join(lines[i] for i in order[-4096:])
                del order[-4096:]
                f.write(chunk)
                size += len(chunk)
                total += len(chunk)
    return total


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a child process."""
    child, _, _ = procs.run(cmd, stdout=subprocess.DEVNULL)
    if child.code != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return child.wall, child.rss_mib


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cluster_figures(files: list[str], workers: int) -> dict:
    """Counting on local:N from this process: start-up, counting wall time, each worker's
    peak RSS."""
    from embedkit import cluster

    t = time.perf_counter()
    with cluster.connect(f"local:{workers}") as runner:
        runner.warm()
        start = time.perf_counter() - t
        t = time.perf_counter()
        cluster.bpe_counts(runner, files)
        wall = time.perf_counter() - t
        t = time.perf_counter()
        cluster.train_counts(runner, files)  # train --scheduler's vocabulary count
        train_wall = time.perf_counter() - t
        rss = sorted(runner.client.run(_maxrss_mib).values())
    return {"startup_s": start, "count_s": wall, "train_count_s": train_wall,
            "worker_rss_mib": rss}


def one_shard(path: str) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, uncompressed bytes) of one process counting one shard."""
    code = ("import sys, time, gzip\nfrom embedkit.bpe.count import count_shard\n"
            "from embedkit.cluster import warm_up\nwarm_up()\nt = time.perf_counter()\n"
            "count_shard(sys.argv[1])\nprint(time.perf_counter() - t)\n")
    child, out, _ = procs.run([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
    if child.code != 0:
        sys.exit("one-shard count failed")
    with gzip.open(path, "rb") as f:
        size = sum(len(b) for b in iter(lambda: f.read(1 << 24), b""))
    return float(out), child.rss_mib, size


def embed_figures(shards: Path, work: Path, mb: float, workers: int, repeat: int) -> dict:
    """`encoder embed --out-dir` single-node (1 and N threads) and on local:N: rows per second
    (whole process, start-up included), and whether local:N wrote the --threads 1 bytes."""
    data, limit = [], int(mb * 1e6)
    for path in sorted(shards.glob("*.txt.gz")):
        with gzip.open(path, "rb") as f:
            data += f.read(limit - sum(map(len, data))).splitlines(keepends=True)[:-1]
        if sum(map(len, data)) >= limit * 0.99:
            break
    sample = work / "embed-in"
    sample.mkdir(exist_ok=True)
    n = 2 * workers
    for k in range(n):
        (sample / f"{k:02d}.txt").write_bytes(b"".join(data[k::n]))
    ek = [sys.executable, "-m", "embedkit"]
    files = sorted(str(p) for p in sample.glob("*.txt"))
    subprocess.run(ek + ["bpe", "learn", *files, "-o", str(work / "etok"), "--vocab-size", "8000",
                         "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(ek + ["encoder", "train", *files, "-t", str(work / "etok"), "-o",
                         str(work / "enc"), "--steps", "1", "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    runs = {"threads_1": ["--threads", "1"], f"threads_{workers}": ["--threads", str(workers)],
            f"local_{workers}": ["--scheduler", f"local:{workers}"]}
    walls: dict = {k: [] for k in runs}
    for r in range(repeat):
        for name, extra in runs.items():
            out = work / f"emb-{name}"
            shutil.rmtree(out, ignore_errors=True)
            walls[name].append(timed(ek + ["encoder", "embed", str(work / "enc"), *files,
                                           "--format", "npy", "--out-dir", str(out), "-q",
                                           *extra])[0])
    m = json.loads((work / "emb-threads_1" / "manifest.json").read_text())
    rows = sum(e["rows"] for e in m["shards"])
    same = all((work / "emb-threads_1" / e["output"]).read_bytes() ==
               (work / f"emb-local_{workers}" / e["output"]).read_bytes() for e in m["shards"])
    return {"embed_mb": sum(map(len, data)) / 1e6, "embed_rows": rows, "embed_identical": same,
            **{f"embed_{k}_rows_s": rows / statistics.median(v) for k, v in walls.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=2.0, help="uncompressed corpus size (GB)")
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="local:N")
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; median")
    ap.add_argument("--workdir", help="keep the generated shards here (default: a temp folder)")
    ap.add_argument("--embed-mb", type=float, default=2.0,
                    help="corpus MB for the encoder embed figures (0: none)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not DEV.is_file():
        sys.exit(f"needs {DEV}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(args.workdir or tmp)
        shards = work / f"shards-{args.gb:g}gb-{args.shards}"
        if not shards.is_dir():
            size = generate(shards, args.gb, args.shards)
            (shards / "SIZE").write_text(str(size))
        size = int((shards / "SIZE").read_text())
        files = sorted(str(p) for p in shards.glob("*.txt.gz"))
        glob_ = str(shards / "*.txt.gz")
        ek = [sys.executable, "-m", "embedkit", "bpe", "learn", "--vocab-size",
              str(args.vocab_size), "-q"]
        single, dist = [], []
        for r in range(args.repeat):
            single.append(timed(ek + [*files, "-o", str(work / "tok1"), "--threads",
                                      str(args.workers)]))
            dist.append(timed(ek + [glob_, "-o", str(work / "tok2"), "--scheduler",
                                    f"local:{args.workers}"]))
        same = (work / "tok1" / "merges.txt").read_bytes() == \
            (work / "tok2" / "merges.txt").read_bytes()
        shard_s, shard_rss, shard_bytes = one_shard(files[0])
        cl = cluster_figures(files, args.workers)
        emb = embed_figures(shards, work, args.embed_mb, args.workers, args.repeat) \
            if args.embed_mb > 0 else {}
    s_wall = statistics.median(w for w, _ in single)
    d_wall = statistics.median(w for w, _ in dist)
    res = {
        "corpus_mb": size / 1e6, "shards": args.shards, "workers": args.workers,
        "single_s": s_wall, "single_mb_s": size / 1e6 / s_wall,
        "single_rss_mib": max(m for _, m in single),
        "dask_s": d_wall, "dask_client_rss_mib": max(m for _, m in dist),
        "ratio_dask_over_single": d_wall / s_wall, "merges_identical": same,
        "one_shard_mb_s": shard_bytes / 1e6 / shard_s, "one_shard_rss_mib": shard_rss,
        "cluster_startup_s": cl["startup_s"], "cluster_count_s": cl["count_s"],
        "cluster_mb_s_per_worker": size / 1e6 / cl["count_s"] / args.workers,
        "train_count_mb_s_per_worker": size / 1e6 / cl["train_count_s"] / args.workers,
        "worker_rss_mib": cl["worker_rss_mib"], **emb,
    }
    if args.json:
        print(json.dumps(res))
        return
    print(f"corpus {res['corpus_mb']:.0f} MB in {args.shards} gzipped shards, vocab "
          f"{args.vocab_size}, median of {args.repeat}; merges identical: {same}\n")
    print("| run | wall s | MB/s | peak RSS MiB | vs single-node |\n|---|---|---|---|---|")
    print(f"| single-node, --threads {args.workers} | {s_wall:.1f} | {res['single_mb_s']:.1f} | "
          f"{res['single_rss_mib']:.0f} | 1.00x |")
    print(f"| --scheduler local:{args.workers} (client) | {d_wall:.1f} | {size / 1e6 / d_wall:.1f}"
          f" | {res['dask_client_rss_mib']:.0f} | {res['ratio_dask_over_single']:.2f}x |")
    print(f"\ncounting per worker: one shard in one process {res['one_shard_mb_s']:.1f} MB/s "
          f"(peak RSS {shard_rss:.0f} MiB); on local:{args.workers} "
          f"{res['cluster_mb_s_per_worker']:.1f} MB/s per worker (count {cl['count_s']:.1f} s "
          f"after {cl['startup_s']:.1f} s start-up), worker peak RSS "
          f"{', '.join(f'{m:.0f}' for m in cl['worker_rss_mib'])} MiB; `train` vocabulary "
          f"count {res['train_count_mb_s_per_worker']:.1f} MB/s per worker")
    if emb:
        w = args.workers
        print(f"\n`encoder embed --out-dir` ({emb['embed_mb']:.1f} MB, {emb['embed_rows']} rows, "
              f"{2 * w} shards; local:{w} bytes = --threads 1 bytes: {emb['embed_identical']}): "
              f"{emb['embed_threads_1_rows_s']:.0f} rows/s with --threads 1 (one worker), "
              f"{emb[f'embed_threads_{w}_rows_s']:.0f} with --threads {w}, "
              f"{emb[f'embed_local_{w}_rows_s']:.0f} on local:{w} = "
              f"{emb[f'embed_local_{w}_rows_s'] / w:.0f} per worker")


if __name__ == "__main__":
    main()
