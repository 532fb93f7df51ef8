"""embedkit's NumPy encoder vs PyTorch's nn.TransformerEncoder (CPU), in the same run.

For each config (d, heads, layers, ffn, seq, batch) it measures, each in a fresh child process
(so peak RSS is per engine) with 2 threads for both (BLAS + Numba, torch.set_num_threads(2)):

- inference tokens/s: post-LN, exact GELU, key padding mask (torch: default
  nn.TransformerEncoder under inference_mode, i.e. its fast path), padding counted as tokens;
  "full" = every sequence real, "ragged" = lengths uniform in [seq/2, seq];
- MLM training-step tokens/s: forward + backward + AdamW, tied output layer over a
  vocabulary of 8,000, logits only at the masked 15%. embedkit has no dropout: the "MLM train
  step" row runs torch with dropout 0 too; the "MLM step, torch p=0.1" row shows torch with its
  default dropout 0.1 (embedkit unchanged).

- contrastive training-step tokens/s: N = 64 pairs of lengths uniform in [16, 48] pieces
  (padded), mean pooling, dot scores, InfoNCE, forward + backward + AdamW (torch: the same model
  and loss, ``torch_contrastive`` in tests/test_encoder_parity.py, no dropout).

Engines alternate and each child reports the median of several timed repetitions after a
warm-up; ratios are ours / torch from this same run. Then, on ../shared/data/corpus/dev.txt
(BPE vocabulary of 8,000 learnt first), unless switched off:

- corpus run (--no-corpus): a short real MLM pretraining, held-out masked-piece cross-entropy
  against the unigram entropy of the pieces (nats);
- learning parity (--no-parity): embedkit and torch (``TorchMLM`` in
  tests/test_encoder_parity.py) from the same initial weights on the same batches (embedkit's
  windows and MLM masks), AdamW with the same settings, no dropout, each in its own child with
  --parity-threads threads: the step-by-step difference of the training losses (first 20
  steps), the held-out loss after --parity-steps steps, and the time per step;
- contrastive (--no-contrastive): ``encoder train --objective contrastive`` on dev.txt, then the
  bound ln N - L_CPC on all held-out pairs with N = 16, 64, 256 candidates;
- downstream (--downstream, long): encoders pretrained with mlm, clm and contrastive on the same
  number of pieces, static skip-gram vectors on dev.tok, and `embedkit probe` accuracy on
  ../shared/data/probe/.

    python benchmarks/bench_encoder.py [--reps 5] [--rounds 2] [--steps 400] [--no-corpus]
        [--no-parity] [--parity-steps 300] [--no-contrastive] [--contrastive-steps 1144]
        [--downstream] [--no-speed]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
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


PAIRS = 64


def pair_data(cfg):
    """A contrastive batch: PAIRS x's then their y's, lengths uniform in [16, 48], padded."""
    import numpy as np

    rng = np.random.default_rng(0)
    lengths = rng.integers(16, 49, 2 * PAIRS)
    ids = rng.integers(0, VOCAB, (2 * PAIRS, lengths.max()))
    return ids, np.arange(lengths.max())[None, :] < lengths[:, None]


def contrastive_config(cfg) -> dict:
    d, h, nl, f, t, b = cfg
    return dict(vocab=VOCAB + 3, dim=d, heads=h, layers=nl, ffn=f, max_len=t,
                positions="sinusoidal", objective="contrastive", pair="adjacent-lines",
                negatives="in-batch", pool="mean", projection=0, score="dot", temperature=1.0,
                contrastive_weight=1.0)


def child_contrastive(engine: str, cfg, reps: int) -> dict:
    import numpy as np

    from embedkit.encoder import contrastive as C
    from embedkit.encoder import network as N
    from embedkit.encoder.optim import AdamW

    conf = contrastive_config(cfg)
    params = N.init_params(conf, np.random.default_rng(0))
    ids, keep = pair_data(cfg)
    if engine == "numpy":
        opt = AdamW(params, 1e-4, 10, 1000)

        def step():
            _, g, _ = C.loss_and_grads(params, conf, ids, keep)
            opt.step(params, g)
    else:
        import torch

        torch.set_num_threads(THREADS)
        model = torch_reference().TorchMLM(params, conf, lr=1e-4, warmup=10, total=1000,
                                           weight_decay=0.01, clip=1.0)

        def step():
            model.step(torch_reference().torch_contrastive(model, ids, keep, conf))

    sec = median_time(step, reps)
    return {"tokens_per_s": int(keep.sum()) / sec, "peak_rss_mb": peak_rss_mb()}


def torch_reference():
    """tests/test_encoder_parity.py: the torch mirror of embedkit's encoder, loss and AdamW."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_encoder_parity

    return test_encoder_parity


def child_torch(cfg, task: str, ragged: bool, reps: int) -> dict:
    import math

    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    d, h, nl, f, t, b = cfg
    dropout = 0.1 if task == "train-dropout" else 0.0  # 0: as embedkit, which has none
    layer = torch.nn.TransformerEncoderLayer(d, h, f, dropout=dropout, activation="gelu",
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
        for task, ragged in (("infer", False), ("infer", True), ("train", False),
                             ("train-dropout", False), ("contrastive", False)):
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(spawn("numpy", cfg, "train" if task == "train-dropout" else task,
                                  ragged, reps))
                theirs.append(spawn("torch", cfg, task, ragged, reps))
            a = max(ours, key=lambda x: x["tokens_per_s"])
            b = max(theirs, key=lambda x: x["tokens_per_s"])
            name = {("infer", False): "inference full", ("infer", True): "inference ragged",
                    ("train", False): "MLM train step",
                    ("train-dropout", False): "MLM step, torch p=0.1",
                    ("contrastive", False): "contrastive step"}[(task, ragged)]
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


PARITY = dict(dim=128, heads=4, layers=2, ffn=512, max_len=128, positions="sinusoidal",
              objective="mlm")
PARITY_OPT = dict(lr=3e-3, warmup=30, weight_decay=0.01, clip=1.0)
PARITY_BATCH = 32


def tokenizer(work: Path) -> Path:
    """BPE 8,000 on dev.txt, learnt once into work/tok."""
    if not (work / "tok" / "vocab.json").exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "embedkit", "bpe", "learn", str(DEV), "-o",
                        str(work / "tok"), "--vocab-size", "8000", "--quiet"], check=True)
    return work / "tok"


def pieces(work: Path) -> Path:
    """dev.txt as embedkit's training and held-out piece streams, encoded once into work/pieces."""
    out = work / "pieces"
    if not (out / "heldout.i32").exists():
        from embedkit.bpe.model import BPETokenizer
        from embedkit.encoder.data import encode_corpus
        from embedkit.encoder.vocab import PieceVocab

        import numpy as np

        tmp = work / "pieces.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        streams = encode_corpus([str(DEV)], PieceVocab(BPETokenizer.load(tokenizer(work))), tmp)
        np.asarray(streams.train).tofile(tmp / "train.i32")
        np.asarray(streams.heldout).tofile(tmp / "heldout.i32")
        tmp.rename(out)
    return out


def child_parity(engine: str, steps: int, work: Path) -> dict:
    """Train PARITY for ``steps`` steps on dev.txt pieces with one engine: every loss, the median
    time per step and the held-out loss (trainer.evaluate's windows and masks for both)."""
    import numpy as np

    from embedkit.bpe.model import BPETokenizer
    from embedkit.encoder import data, trainer
    from embedkit.encoder import network as N
    from embedkit.encoder.optim import AdamW
    from embedkit.encoder.vocab import PieceVocab

    vocab = PieceVocab(BPETokenizer.load(work / "tok"))
    train = np.memmap(work / "pieces" / "train.i32", np.int32, mode="r")
    held = np.memmap(work / "pieces" / "heldout.i32", np.int32, mode="r")
    cfg = dict(PARITY, vocab=vocab.size)
    rng = np.random.default_rng(0)        # as the trainer: weights first, then the batches
    params = N.init_params(cfg, rng)
    if engine == "torch":
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        model = torch_reference().TorchMLM(params, cfg, total=steps, **PARITY_OPT)
    else:
        opt = AdamW(params, PARITY_OPT["lr"], PARITY_OPT["warmup"], steps,
                    weight_decay=PARITY_OPT["weight_decay"], clip=PARITY_OPT["clip"])
    losses, times = [], []
    for _ in range(steps):
        windows = data.random_windows(train, rng, PARITY_BATCH, cfg["max_len"])
        inputs, keep, rows, targets = trainer.make_batch(windows, vocab, cfg, rng)
        t = time.perf_counter()
        if engine == "torch":
            losses.append(model.step(model.mlm_loss(inputs, rows, targets)))
        else:
            loss, grads = N.loss_and_grads(params, cfg, inputs, keep, rows, targets)
            opt.step(params, grads)
            losses.append(loss)
        times.append(time.perf_counter() - t)
    if engine == "torch":
        import torch

        windows = data.eval_windows(held, data.window_length(held, cfg["max_len"], 0))
        erng = np.random.default_rng(trainer.EVAL_SEED)
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(windows), PARITY_BATCH):
                inputs, keep, rows, targets = trainer.make_batch(windows[i:i + PARITY_BATCH],
                                                                 vocab, cfg, erng)
                total += float(model.mlm_loss(inputs, rows, targets)) * rows.size
                count += rows.size
        heldout = total / count
    else:
        heldout = trainer.evaluate(params, cfg, vocab, held, PARITY_BATCH)
    return {"losses": losses, "step_s": sorted(times)[len(times) // 2], "heldout": heldout}


def parity_run(steps: int, threads: int, work: Path) -> None:
    if not DEV.exists():
        print(f"(no {DEV}: parity run skipped)")
        return
    pieces(work)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    out = {}
    for engine in ("numpy", "torch"):
        r = subprocess.run([sys.executable, __file__, "--parity-child", engine, str(steps),
                            str(work)], capture_output=True, text=True, env=env, cwd=ROOT)
        if r.returncode != 0:
            raise SystemExit(f"parity child {engine} failed:\n{r.stderr}")
        out[engine] = json.loads(r.stdout.strip().splitlines()[-1])
    a, b = out["numpy"], out["torch"]
    first = max(abs(x - y) for x, y in zip(a["losses"][:20], b["losses"][:20]))
    print(f"\nlearning parity with torch: MLM d=128 h=4 L=2 ffn=512 T=128 B={PARITY_BATCH} on "
          f"dev.txt pieces (BPE 8,000), same initial weights and batches, AdamW lr "
          f"{PARITY_OPT['lr']} warmup {PARITY_OPT['warmup']}, no dropout, {threads} thread(s) each")
    print(f"  training loss, first 20 steps: max |embedkit - torch| = {first:.2e} nats "
          f"(step 1: {a['losses'][0]:.4f} / {b['losses'][0]:.4f}; step 20: "
          f"{a['losses'][19]:.4f} / {b['losses'][19]:.4f})")
    worst = max(abs(x - y) for x, y in zip(a["losses"], b["losses"]))
    print(f"  training loss, step {steps}: {a['losses'][-1]:.4f} / {b['losses'][-1]:.4f}; "
          f"max |diff| over all steps {worst:.2e}")
    print(f"  held-out loss after {steps} steps: embedkit {a['heldout']:.4f}, torch "
          f"{b['heldout']:.4f} nats ({100 * (a['heldout'] / b['heldout'] - 1):+.2f}%)")
    print(f"  time per step (median): embedkit {1000 * a['step_s']:.0f} ms, torch "
          f"{1000 * b['step_s']:.0f} ms (ratio torch/embedkit {b['step_s'] / a['step_s']:.2f})")


def contrastive_run(steps: int, work: Path) -> None:
    """Contrastive pretraining on dev.txt, then the bound with N = 16, 64, 256 candidates."""
    if not DEV.exists():
        print(f"(no {DEV}: contrastive run skipped)")
        return
    from embedkit.encoder.contrastive import heldout_bounds

    enc = work / "enc_contrastive"
    s = train_encoder(work, enc, ["--objective", "contrastive", "--batch-size", "64",
                                  "--steps", str(steps)])
    f3 = lambda x: "n/a" if x is None else f"{x:.3f}"
    print(f"\ncontrastive run: dev.txt, d=128 h=4 L=2, N=64 adjacent-line pairs, dot score, "
          f"temperature 1, {s['steps']} steps ({s['tokens_per_s']:.0f} tokens/s): held-out L_CPC "
          f"{f3(s['heldout_loss'])} nats, ln 64 - L_CPC = {f3(s['mi_bound'])} nats, top-1 "
          f"{f3(s['heldout_top1'])} (1,024 held-out pairs; training: {f3(s['train_mi_bound'])})")
    print(f"{'N':>5} {'ln N':>6} {'L_CPC':>7} {'ln N - L_CPC':>13} {'top-1':>6} {'pairs':>6}")
    for r in heldout_bounds(enc, [DEV]):
        if r.get("loss") is None:
            print(f"{r['n']:5d}  (fewer than N held-out pairs: {r['pairs']})")
            continue
        print(f"{r['n']:5d} {math.log(r['n']):6.3f} {r['loss']:7.3f} {r['mi_bound']:13.3f} "
              f"{r['top1']:6.3f} {r['pairs']:6d}")


def train_encoder(work: Path, encdir: Path, args: list[str]) -> dict:
    if encdir.exists():
        shutil.rmtree(encdir)
    r = subprocess.run([sys.executable, "-m", "embedkit", "encoder", "train", str(DEV), "-t",
                        str(tokenizer(work)), "-o", str(encdir), "--lr", "3e-3", "--warmup", "100",
                        "--threads", "1", "--json", "-q", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout)


# Same size (d=128, h=4, L=2, ffn=512) and about the same pieces seen (4.1M): MLM/CLM 1000 steps
# of 32 x 128 pieces; contrastive 1144 steps of 64 pairs (dev.txt pairs average 55.9 pieces);
# mlm+contrastive 696 steps of 32 windows + 32 pairs.
DOWNSTREAM = {
    "mlm": ["--objective", "mlm", "--batch-size", "32", "--steps", "1000"],
    "clm": ["--objective", "clm", "--batch-size", "32", "--steps", "1000", "--lr", "1e-3"],
    "contrastive": ["--objective", "contrastive", "--batch-size", "64", "--steps", "1144"],
    "contrastive cos": ["--objective", "contrastive", "--batch-size", "64", "--steps", "1144",
                        "--score", "cosine", "--temperature", "0.1", "--projection", "128"],
    "mlm+contrastive": ["--objective", "mlm+contrastive", "--batch-size", "32", "--steps", "696"],
}


def downstream_run(work: Path) -> None:
    probe = DEV.parents[1] / "probe"
    feats = {}
    for name, args in DOWNSTREAM.items():
        enc = work / ("enc_" + name.replace(" ", "_"))
        if not (enc / "encoder.ekm").exists():
            train_encoder(work, enc, args)
        feats[name] = enc
    static = work / "static"
    if not static.with_suffix(".ekv").exists():
        subprocess.run([sys.executable, "-m", "embedkit", "train", str(DEV.with_suffix(".tok")),
                        "-o", str(static), "--model", "skipgram", "--dim", "128", "--threads", "1",
                        "-q"], check=True, capture_output=True)
    feats["static skip-gram (dev.tok, d=128)"] = static.with_suffix(".ekv")
    sets = ("movie_reviews", "pros_cons")
    print("\ndownstream: probe accuracy (frozen features, logistic regression, `embedkit probe`)")
    print(f"{'features':36} " + " ".join(f"{s + ' cv':>18} {s + ' test':>20}" for s in sets))
    for name, path in feats.items():
        cells = []
        for s in sets:
            r = subprocess.run([sys.executable, "-m", "embedkit", "probe", str(path),
                                str(probe / f"{s}.train.tsv"), str(probe / f"{s}.test.tsv"),
                                "--threads", "1", "--json", "-q"], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            j = json.loads(r.stdout)
            cells.append(f"{j['cv_accuracy']:18.3f} {j['test_accuracy']:20.3f}")
        print(f"{name:36} " + " ".join(cells), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, task, cfg, ragged, reps = sys.argv[2:7]
        if task == "contrastive":
            print(json.dumps(child_contrastive(engine, tuple(json.loads(cfg)), int(reps))))
            return
        fn = child_numpy if engine == "numpy" else child_torch
        print(json.dumps(fn(tuple(json.loads(cfg)), task, ragged == "1", int(reps))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--parity-child":
        engine, steps, work = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
        print(json.dumps(child_parity(engine, steps, work)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-parity", action="store_true")
    ap.add_argument("--parity-steps", type=int, default=300)
    ap.add_argument("--parity-threads", type=int, default=THREADS)
    ap.add_argument("--no-contrastive", action="store_true")
    ap.add_argument("--contrastive-steps", type=int, default=1144)
    ap.add_argument("--downstream", action="store_true")
    ap.add_argument("--work", default="/tmp/encoder/bench")
    a = ap.parse_args()
    if not a.no_speed:
        speed_table(a.reps, a.rounds)
    if not a.no_corpus:
        corpus_run(a.steps, a.lr, Path(a.work))
    if not a.no_parity:
        parity_run(a.parity_steps, a.parity_threads, Path(a.work))
    if not a.no_contrastive:
        contrastive_run(a.contrastive_steps, Path(a.work))
    if a.downstream:
        downstream_run(Path(a.work))


if __name__ == "__main__":
    main()
