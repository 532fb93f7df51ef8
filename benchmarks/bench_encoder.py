"""embedkit's NumPy encoder vs PyTorch's nn.TransformerEncoder (CPU), in the same run.

For each config (d, heads, layers, ffn, seq, batch) it measures, each in a fresh child process
(so peak RSS is per engine) with 2 threads for both (BLAS + Numba, torch.set_num_threads(2)):

- inference tokens/s: post-LN, exact GELU, key padding mask (torch: default
  nn.TransformerEncoder under inference_mode, i.e. its fast path), padding counted as tokens;
  "full" = every sequence real, "ragged" = lengths uniform in [seq/2, seq];
- MLM training-step tokens/s: forward + backward + AdamW, tied output layer over a
  vocabulary of 8,000, logits only at the masked 15% (torch: dropout 0.1 as its default).

Engines alternate and each child reports the median of several timed repetitions after a
warm-up; ratios are ours / torch from this same run. Then, unless --no-corpus, a short real
pretraining run on ../shared/data/corpus/dev.txt (BPE vocabulary of 8,000 learnt first) reports
the held-out masked-piece cross-entropy against the unigram entropy of the pieces (nats).

    python benchmarks/bench_encoder.py [--reps 5] [--rounds 2] [--steps 400] [--no-corpus]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = [(128, 4, 2, 512, 128, 32), (256, 4, 4, 1024, 128, 32)]
VOCAB = 8000
THREADS = 2
ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "corpus" / "dev.txt"


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def batch_data(cfg, ragged: bool):
    import numpy as np

    d, h, nl, f, t, b = cfg
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (b, t))
    lengths = rng.integers(t // 2, t + 1, b) if ragged else np.full(b, t)
    keep = np.arange(t)[None, :] < lengths[:, None]
    return ids, keep


def child_numpy(cfg, task: str, ragged: bool, reps: int) -> dict:
    import numpy as np

    from embedkit.encoder import network as N
    from embedkit.encoder.objectives import mlm_batch
    from embedkit.encoder.optim import AdamW

    d, h, nl, f, t, b = cfg
    conf = dict(vocab=VOCAB + 3, dim=d, heads=h, layers=nl, ffn=f, max_len=t,
                positions="sinusoidal", objective="mlm")
    params = N.init_params(conf, np.random.default_rng(0))
    ids, keep = batch_data(cfg, ragged)
    if task == "infer":
        sec = median_time(lambda: N.forward(params, conf, ids, keep), reps)
    else:
        opt = AdamW(params, 1e-4, 10, 1000)
        rng = np.random.default_rng(1)
        regular = np.ones(VOCAB + 3, bool)
        regular[VOCAB:] = False

        def step():
            inputs, rows, targets = mlm_batch(ids, keep, rng, VOCAB + 1, regular)
            _, g = N.loss_and_grads(params, conf, inputs, keep, rows, targets)
            opt.step(params, g)

        sec = median_time(step, reps)
    return {"tokens_per_s": b * t / sec, "peak_rss_mb": peak_rss_mb()}


def child_torch(cfg, task: str, ragged: bool, reps: int) -> dict:
    import math

    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    d, h, nl, f, t, b = cfg
    layer = torch.nn.TransformerEncoderLayer(d, h, f, dropout=0.1, activation="gelu",
                                             batch_first=True, norm_first=False)
    enc = torch.nn.TransformerEncoder(layer, nl, enable_nested_tensor=True)
    emb = torch.nn.Embedding(VOCAB + 3, d)
    out_b = torch.nn.Parameter(torch.zeros(VOCAB + 3))
    pos = torch.zeros(t, d)
    p = torch.arange(t).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pos[:, 0::2] = torch.sin(p * div)
    pos[:, 1::2] = torch.cos(p * div)
    ids_np, keep_np = batch_data(cfg, ragged)
    ids = torch.from_numpy(ids_np)
    pad = torch.from_numpy(~keep_np)
    scale = math.sqrt(d)
    if task == "infer":
        enc.eval()

        def run():
            with torch.inference_mode():
                enc(emb(ids) * scale + pos, src_key_padding_mask=pad)

        sec = median_time(run, reps)
    else:
        enc.train()
        params = list(enc.parameters()) + list(emb.parameters()) + [out_b]
        opt = torch.optim.AdamW(params, lr=1e-4)
        rng = np.random.default_rng(1)

        def step():
            chosen = torch.from_numpy((rng.random(ids_np.shape) < 0.15) & keep_np)
            inputs = ids.clone()
            inputs[chosen] = VOCAB + 1
            hid = enc(emb(inputs) * scale + pos, src_key_padding_mask=pad)
            logits = hid[chosen] @ emb.weight.T + out_b
            loss = torch.nn.functional.cross_entropy(logits, ids[chosen])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        sec = median_time(step, reps)
    return {"tokens_per_s": b * t / sec, "peak_rss_mb": peak_rss_mb()}


def spawn(engine: str, cfg, task: str, ragged: bool, reps: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(THREADS)
    args = [sys.executable, "-X", "faulthandler", __file__, "--child", engine, task,
            json.dumps(cfg), str(int(ragged)), str(reps)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"child {engine} {task} failed (exit code {r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def speed_table(reps: int, rounds: int) -> None:
    print(f"threads: {THREADS} (BLAS + Numba for embedkit, torch.set_num_threads for torch); "
          f"median of {reps} reps, best of {rounds} alternating rounds")
    print(f"{'config (d,h,L,ffn,T,B)':26} {'task':16} {'embedkit tok/s':>15} {'torch tok/s':>12} "
          f"{'ratio':>6} {'RSS MB ours':>12} {'RSS MB torch':>13}")
    for cfg in CONFIGS:
        for task, ragged in (("infer", False), ("infer", True), ("train", False)):
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(spawn("numpy", cfg, task, ragged, reps))
                theirs.append(spawn("torch", cfg, task, ragged, reps))
            a = max(ours, key=lambda x: x["tokens_per_s"])
            b = max(theirs, key=lambda x: x["tokens_per_s"])
            name = {("infer", False): "inference full", ("infer", True): "inference ragged",
                    ("train", False): "MLM train step"}[(task, ragged)]
            print(f"{str(cfg):26} {name:16} {a['tokens_per_s']:15.0f} {b['tokens_per_s']:12.0f} "
                  f"{a['tokens_per_s'] / b['tokens_per_s']:6.2f} {a['peak_rss_mb']:12.0f} "
                  f"{b['peak_rss_mb']:13.0f}", flush=True)


def corpus_run(steps: int, lr: float, work: Path) -> None:
    """BPE 8k on dev.txt, then a short MLM pretraining: held-out CE vs unigram entropy."""
    if not DEV.exists():
        print(f"(no {DEV}: corpus run skipped)")
        return
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    t = time.perf_counter()
    if not (work / "tok" / "vocab.json").exists():
        subprocess.run([sys.executable, "-m", "embedkit", "bpe", "learn", str(DEV), "-o",
                        str(work / "tok"), "--vocab-size", "8000", "--quiet"], check=True, env=env)
    bpe_s = time.perf_counter() - t
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "embedkit", "encoder", "train", str(DEV), "-t",
                        str(work / "tok"), "-o", str(work / "enc"), "--steps", str(steps),
                        "--lr", str(lr), "--warmup", str(max(1, steps // 10)),
                        "--threads", str(THREADS),
                        "--json", "-q"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    s = json.loads(r.stdout)
    print(f"\ncorpus run: {DEV.name}, BPE 8,000 pieces ({bpe_s:.0f} s), MLM d=128 h=4 L=2 ffn=512 "
          f"T=128 B=32, lr {lr}, {s['steps']} steps in {time.perf_counter() - t:.0f} s "
          f"({s['tokens_per_s']:.0f} tokens/s)")
    print(f"held-out masked-piece cross-entropy {s['heldout_loss']:.3f} nats vs unigram entropy "
          f"{s['unigram_entropy']:.3f} nats ({s['unigram_entropy'] - s['heldout_loss']:.3f} below)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, task, cfg, ragged, reps = sys.argv[2:7]
        fn = child_numpy if engine == "numpy" else child_torch
        print(json.dumps(fn(tuple(json.loads(cfg)), task, ragged == "1", int(reps))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--work", default="/tmp/encoder/bench")
    a = ap.parse_args()
    if not a.no_speed:
        speed_table(a.reps, a.rounds)
    if not a.no_corpus:
        corpus_run(a.steps, a.lr, Path(a.work))


if __name__ == "__main__":
    main()
