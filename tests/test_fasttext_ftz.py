"""Quantized fastText `.ftz` classifiers predict what fastText predicts, for every quantizer layout;
every corrupt quantized matrix is a one-line error.

Models are trained and quantized in the test with fasttext-wheel (dim 10: the sub-quantizers
``dsub`` 2, 3 and 4 give a last part of 2, 1 and 2 values). The reference is the wheel's
single-line ``predict`` (see tests/test_fasttext_supervised.py for why not its list form).
"""
from __future__ import annotations

import random
import struct
import subprocess
import sys

import numpy as np
import pytest

from embedkit.errors import InputError

fasttext = pytest.importorskip("fasttext", reason="fasttext-wheel (test extra) not installed")
from embedkit.classify import fasttext as ftc  # noqa: E402  (after the skip: needs numba)
from embedkit.vectors.model import load  # noqa: E402

WORDS = ("good bad great awful film movie plot actor boring fun love hate café über the a is "
         "was 日本 ok").split()
DIM = 10
# name: (loss, quantize options); cutoff > 0 prunes the n-gram rows (and retrains nothing)
VARIANTS = {
    "softmax-plain-d3": ("softmax", dict(qnorm=False, cutoff=0, dsub=3)),
    "softmax-qnorm-d2-cutoff": ("softmax", dict(qnorm=True, cutoff=400, dsub=2)),
    "hs-qnorm-d4": ("hs", dict(qnorm=True, cutoff=0, dsub=4)),
    "ova-plain-d2-cutoff": ("ova", dict(qnorm=False, cutoff=300, dsub=2)),
}


@pytest.fixture(scope="module")
def ftz(tmp_path_factory):
    """name -> path of a quantized model; plus the test lines (known, unknown, label tokens)."""
    d = tmp_path_factory.mktemp("ftz")
    rng = random.Random(5)
    labels = ["pos", "neg", "neu"]
    train = []
    for i in range(500):
        lab = rng.sample(labels, 1 + (i % 4 == 0))
        text = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
        train.append(" ".join([f"__label__{x}" for x in lab] + text))
    (d / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    extra = ["zzqx", "goood", "filmy", "日本語", "__label__pos", "</s>"]
    lines = [" ".join(rng.choice(WORDS + extra) for _ in range(rng.randint(0, 20)))
             for _ in range(250)]
    out = {}
    for name, (loss, kw) in VARIANTS.items():
        m = fasttext.train_supervised(str(d / "train.txt"), dim=DIM, epoch=4, minCount=1,
                                      bucket=3000, wordNgrams=2, minn=2, maxn=4, loss=loss,
                                      thread=1, seed=1, verbose=0)
        m.quantize(input=str(d / "train.txt"), retrain=False, verbose=0, **kw)
        m.save_model(str(d / f"{name}.ftz"))
        out[name] = d / f"{name}.ftz"
    return out, lines


def test_predictions_equal_fasttext_on_quantized_models(ftz):
    paths, lines = ftz
    for name, path in paths.items():
        ft = fasttext.load_model(str(path))
        pred = ftc.load(path)
        probs = pred.predict_proba([line.split() for line in lines])
        index = {"__label__" + lab: j for j, lab in enumerate(pred.labels)}
        for i, line in enumerate(lines):
            ref = ft.f.predict(line + "\n", -1, 0.0, "strict")
            if not ref:  # no rows at all: fastText predicts nothing, we give zeros
                assert not probs[i].any(), (name, line)
                continue
            got = probs[i, [index[lab] for _, lab in ref]]
            assert np.abs(got - [p for p, _ in ref]).max() < 1e-6, (name, line)
            top = int(np.argmax(probs[i]))
            assert top == index[ref[0][1]] or probs[i, top] - ref[0][0] < 1e-7, (name, line)


def _header_at(data: bytes, path) -> tuple[int, int, int]:
    """Offset of the input QuantMatrix's ``m, n, codesize`` and its m, nsubq."""
    m = ftc.load(path).model.input.shape[0]
    found = [(data.find(struct.pack("<qqi", m, DIM, m * k)), k) for k in range(1, DIM + 1)]
    (at, nsubq), = [(a, k) for a, k in found if a > 0]
    assert data.find(struct.pack("<qqi", m, DIM, m * nsubq), at + 1) < 0
    return at, m, nsubq


def _cli_predict(model, tmp_path):
    (tmp_path / "in.txt").write_text("good film\nbad\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "embedkit", "classify", "predict", str(model),
                           str(tmp_path / "in.txt")], capture_output=True, text=True)


def test_lying_and_truncated_quantized_matrices_are_one_line_errors(ftz, tmp_path):
    path = ftz[0]["softmax-qnorm-d2-cutoff"]
    data = path.read_bytes()
    at, m, nsubq = _header_at(data, path)
    codes_end = at + 20 + m * nsubq
    pq_end = codes_end + 16 + 4 * DIM * 256
    lies = {  # what the file claims -> the error's wording
        "rows+1": (struct.pack("<qqi", m + 1, DIM, m * nsubq), "expected"),
        "rows-1": (struct.pack("<qqi", m - 1, DIM, (m - 1) * nsubq), "expected"),
        "dim": (struct.pack("<qqi", m, DIM + 1, m * nsubq), "expected"),
        "codesize": (struct.pack("<qqi", m, DIM, m * nsubq + 7), "corrupt"),
        "codesize-huge": (struct.pack("<qqi", m, DIM, 2 ** 31 - 1), "truncated or corrupt"),
    }
    bad = tmp_path / "bad.ftz"
    for name, (header, words) in lies.items():
        bad.write_bytes(data[:at] + header + data[at + 20:])
        with pytest.raises(InputError, match=words):
            ftc.load(bad)
    qnorm_flag = data[:at - 1] + b"\x02" + data[at:]
    bad.write_bytes(qnorm_flag)
    with pytest.raises(InputError, match="qnorm flag"):
        ftc.load(bad)
    dsub_lie = data[:codes_end + 8] + struct.pack("<i", 3) + data[codes_end + 12:]
    bad.write_bytes(dsub_lie)
    with pytest.raises(InputError, match="product quantizer"):
        ftc.load(bad)
    nan = data[:codes_end + 16] + struct.pack("<f", float("nan")) + data[codes_end + 20:]
    bad.write_bytes(nan)
    with pytest.raises(InputError, match="non-finite"):
        ftc.load(bad)
    ends = {at + 10: "input matrix", codes_end - 1: "truncated", codes_end + 100: "centroids",
            pq_end + m // 2: "norms", pq_end + m + 30: "centroids"}
    for cut, words in ends.items():
        bad.write_bytes(data[:cut])
        with pytest.raises(InputError, match=words):
            ftc.load(bad)
        with pytest.raises(InputError):
            load(bad)  # the word-vector side too
    bad.write_bytes(data[:pq_end + m // 2])
    r = _cli_predict(bad, tmp_path)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == (f"embedkit: error: {bad}: truncated fastText file (ends in the input "
                        f"matrix norms)\n")
    r = _cli_predict(path, tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
