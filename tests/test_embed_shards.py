"""`encoder embed --out-dir` (+ `--scheduler`): one output per input file, each the very bytes
single-node `encoder embed FILE` writes; the manifest, re-runs that skip what is done, and the
bad inputs. The cut-anywhere property is exact up to float rounding (a line's vectors round by
the batch it is encoded in); cuts at multiples of 256 lines give the whole corpus's bytes."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedkit import Encoder
from embedkit.bpe.model import BPETokenizer
from cli_run import run

HAVE_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="Dask is not installed: pip install -e '.[dask]'")
if HAVE_DASK:
    from test_cluster import client  # noqa: F401  (the one loopback LocalCluster fixture)

WORDS = "the cat sat on mat dog ran park bank river tree café naïve . ,".split()
SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .", "the river bank , the tree .",
             "café naïve dog", ""]
TINY = dict(steps=2, dim=16, heads=2, ffn=32, layers=2, max_len=8, batch_size=8, warmup=1,
            threads=1, quiet=True)


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    """A tiny encoder (two steps: the vectors need not be good, only deterministic)."""
    d = tmp_path_factory.mktemp("enc")
    (d / "corpus.txt").write_text("\n".join(SENTENCES * 20) + "\n", encoding="utf-8")
    Encoder.train(d / "corpus.txt", BPETokenizer.train(SENTENCES * 20, 280), d / "enc", **TINY)
    return d / "enc"


def shards(folder: Path, lines: list[str], cuts) -> list[Path]:
    """``lines`` cut before the line indices ``cuts`` into 00.txt, 01.txt, ..."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(lines)}), len(lines)]
    folder.mkdir()
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        out.append(folder / f"{i:02d}.txt")
        out[-1].write_text("".join(x + "\n" for x in lines[a:b]), encoding="utf-8")
    return out


def single(enc, path, out, capsys, *opts):
    """Single-node `encoder embed PATH -o OUT --threads 1`: its bytes."""
    code, _, err = run(["encoder", "embed", enc, path, "-o", out, "--threads", 1, "-q", *opts],
                       capsys)
    assert code == 0, err
    return out.read_bytes()


def outputs(out_dir: Path, files, fmt) -> list[bytes]:
    return [(out_dir / f"{f.name}.{fmt}").read_bytes() for f in files]


def joined(blobs: list[bytes], fmt):
    """The shards' records together: one array (npy), or the pieces and vectors (jsonl)."""
    if fmt == "npy":
        return np.concatenate([np.load(io.BytesIO(b)) for b in blobs])
    rows = [json.loads(x) for b in blobs for x in b.decode().splitlines()]
    return rows


def assert_close(a, b, fmt):
    """Equal but for float rounding: same rows, pieces exactly, vectors within 1e-5."""
    if fmt == "npy":
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
        return
    assert [r["pieces"] for r in a] == [r["pieces"] for r in b]
    key = next(iter(set(a[0]) - {"pieces"})) if a else "vectors"
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.array(x[key], float), np.array(y[key], float), atol=1e-5)


# ---- any sharding: each shard is single-node's output for that file ---------------------------

@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join), min_size=1,
                      max_size=30),
       cuts=st.lists(st.integers(1, 29), max_size=4),
       fmt=st.sampled_from(["npy", "jsonl"]), pool=st.sampled_from(["none", "mean"]),
       scheduler=st.sampled_from([None, "sync"] if HAVE_DASK else [None]))
def test_any_sharding_gives_single_node_outputs(enc, tmp_path_factory, capsys, lines, cuts, fmt,
                                               pool, scheduler):
    tmp = tmp_path_factory.mktemp("prop")
    files = shards(tmp / "s", lines, cuts)
    whole = tmp / "whole.txt"
    whole.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    out = tmp / "emb"
    code, msg, err = run(["encoder", "embed", enc, tmp / "s" / "*.txt", "--format", fmt, "--pool",
                          pool, "--out-dir", out, "--threads", 1, "-q",
                          *(["--scheduler", scheduler] if scheduler else [])], capsys)
    assert code == 0, err
    got = outputs(out, files, fmt)
    opts = ("--format", fmt, "--pool", pool)
    assert got == [single(enc, f, tmp / f"ref.{fmt}", capsys, *opts) for f in files]
    code, _, err = run(["encoder", "embed", enc, *files, "-o", tmp / f"all.{fmt}", "--threads", 1,
                        "-q", *opts], capsys)  # the same files in one single-node run
    assert code == 0, err
    all_ = (tmp / f"all.{fmt}").read_bytes()
    if fmt == "jsonl":
        assert all_ == b"".join(got)
    else:
        assert np.array_equal(np.load(io.BytesIO(all_)), joined(got, fmt))
    ref = single(enc, whole, tmp / f"whole.{fmt}", capsys, *opts)
    assert_close(joined(got, fmt), joined([ref], fmt), fmt)
    if len(files) == 1:
        assert got == [ref]
    m = json.loads((out / "manifest.json").read_text())
    assert [e["output"] for e in m["shards"]] == [f"{f.name}.{fmt}" for f in files]
    pieces = Encoder.load(enc).pieces
    for e, f, body in zip(m["shards"], files, got):
        texts = f.read_text(encoding="utf-8").splitlines()
        rows = len(texts) if pool == "mean" else sum(len(pieces(t)) for t in texts)
        assert (e["shard"], e["lines"], e["rows"]) == (str(f), len(texts), rows)
        if fmt == "npy":
            assert np.load(io.BytesIO(body)).shape == (rows, 16)
        assert e["sha256"] == hashlib.sha256(body).hexdigest()
        assert (e["size"], e["mtime_ns"]) == (f.stat().st_size, f.stat().st_mtime_ns)
    assert msg.strip() == f"{len(files)} files (0 already done), {sum(e['rows'] for e in m['shards'])} rows: {out}"


@pytest.mark.parametrize("fmt", ["npy", "jsonl"])
def test_cuts_at_multiples_of_256_lines_give_the_whole_corpus_bytes(enc, tmp_path, capsys, fmt):
    lines = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(i % 11)) for i in range(600)]
    files = shards(tmp_path / "s", lines, [256, 512])
    whole = tmp_path / "whole.txt"
    whole.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    code, _, err = run(["encoder", "embed", enc, *files, "--format", fmt, "--out-dir",
                        tmp_path / "emb", "--threads", 1, "-q"], capsys)
    assert code == 0, err
    got, ref = outputs(tmp_path / "emb", files, fmt), single(enc, whole, tmp_path / "w", capsys,
                                                                "--format", fmt)
    if fmt == "npy":
        assert np.array_equal(joined(got, fmt), np.load(io.BytesIO(ref)))
    else:
        assert b"".join(got) == ref


def test_npy_rows_are_streamed_as_np_save_writes_them(enc, tmp_path, capsysbinary):
    """-o FILE streams the rows (header rewritten with the count); stdout stacks them: same bytes."""
    f = tmp_path / "in.txt"
    f.write_text("the cat\n\nsat on the mat .\n", encoding="utf-8")
    code, out, _ = run(["encoder", "embed", enc, f, "--format", "npy", "--threads", 1],
                       capsysbinary)
    assert code == 0
    assert single(enc, f, tmp_path / "o.npy", capsysbinary, "--format", "npy") == out
    buf = io.BytesIO()
    np.save(buf, np.load(io.BytesIO(out)))
    assert buf.getvalue() == out
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert np.load(io.BytesIO(single(enc, empty, tmp_path / "e.npy", capsysbinary, "--format",
                                     "npy"))).shape == (0, 16)


def test_without_scheduler_files_run_here_with_threads(enc, tmp_path, capsys):
    files = shards(tmp_path / "s", [" ".join(WORDS[k:]) for k in range(len(WORDS))] * 4, [20])
    code, _, err = run(["encoder", "embed", enc, *files, "--pool", "mean", "--out-dir",
                        tmp_path / "emb", "--threads", 2, "-q"], capsys)
    assert code == 0, err
    for f in files:
        code, _, _ = run(["encoder", "embed", enc, f, "--pool", "mean", "-o", tmp_path / "ref",
                          "--threads", 2], capsys)
        assert (tmp_path / "emb" / f"{f.name}.jsonl").read_bytes() == (tmp_path / "ref").read_bytes()


# ---- re-runs ----------------------------------------------------------------------------------

def test_rerun_skips_done_files_and_redoes_changed_ones(enc, tmp_path, capsys):
    files = shards(tmp_path / "s", SENTENCES * 3, [4, 9])
    out = tmp_path / "emb"
    args = ["encoder", "embed", enc, *files, "--format", "npy", "--out-dir", out, "-q"]
    assert run(args, capsys)[0] == 0
    names = [out / f"{f.name}.npy" for f in files]
    first = [p.read_bytes() for p in names]
    stamps = [p.stat().st_mtime_ns for p in names]
    code, msg, _ = run(args, capsys)
    assert code == 0 and "3 files (3 already done)" in msg
    assert [p.stat().st_mtime_ns for p in names] == stamps
    names[1].write_bytes(b"damaged")  # a damaged output is redone, the others are skipped
    files[2].write_text("a new last shard\n", encoding="utf-8")  # so is a changed input
    code, msg, _ = run(args, capsys)
    assert code == 0 and "(1 already done)" in msg
    assert names[0].stat().st_mtime_ns == stamps[0] and names[1].read_bytes() == first[1]
    assert np.load(names[2]).shape[0] == len(Encoder.load(enc).pieces("a new last shard"))
    code, msg, _ = run([*args, "--layer", "1"], capsys)  # another option: all redone
    assert code == 0 and "(0 already done)" in msg
    assert json.loads((out / "manifest.json").read_text())["layer"] == 1
    changed = Encoder.load(enc)
    changed.params["wte"] = changed.params["wte"] + 1
    enc2 = tmp_path / "enc2"
    changed.save(enc2)
    args2 = [*args[:2], enc2, *args[3:], "--layer", "1"]
    assert run(args2, capsys)[0] == 0
    code, msg, _ = run(args2, capsys)
    assert "(3 already done)" in msg
    changed.params["wte"] = changed.params["wte"] + 1  # the same folder, other weights: redone
    changed.save(enc2)
    code, msg, _ = run(args2, capsys)
    assert code == 0 and "(0 already done)" in msg


def test_an_entry_without_its_counts_is_redone(enc, tmp_path, capsys):
    files = shards(tmp_path / "s", SENTENCES, [2])
    args = ["encoder", "embed", enc, *files, "--out-dir", tmp_path / "emb", "-q"]
    assert run(args, capsys)[0] == 0
    path = tmp_path / "emb" / "manifest.json"
    m = json.loads(path.read_text())
    del m["shards"][0]["rows"]
    path.write_text(json.dumps(m))
    code, msg, _ = run(args, capsys)
    assert code == 0 and "2 files (1 already done)" in msg
    assert "rows" in json.loads(path.read_text())["shards"][0]


def test_ctrl_c_mid_file_keeps_the_done_files_and_no_partial_one(enc, tmp_path, capsys,
                                                                 monkeypatch):
    from embedkit.cli import encoder as cli_encoder

    files = shards(tmp_path / "s", SENTENCES * 2, [5])
    real = cli_encoder._embedded

    def interrupted(enc_, texts, *a, **k):
        calls.append(texts)
        for n, record in enumerate(real(enc_, texts, *a, **k)):
            if len(calls) == 2 and n == 2:
                raise KeyboardInterrupt  # the second file, after its first rows were written
            yield record

    calls: list = []
    monkeypatch.setattr(cli_encoder, "_embedded", interrupted)
    code, _, err = run(["encoder", "embed", enc, *files, "--format", "npy", "--out-dir",
                        tmp_path / "emb", "-q"], capsys)
    assert code == 130 and "interrupted" in err
    assert sorted(os.listdir(tmp_path / "emb")) == ["00.txt.npy", "manifest.json"]
    m = json.loads((tmp_path / "emb" / "manifest.json").read_text())
    assert [e["output"] for e in m["shards"]] == ["00.txt.npy"]


# ---- bad input --------------------------------------------------------------------------------

def test_usage_errors(enc, tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("the cat\n", encoding="utf-8")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "a.txt.gz").write_bytes(b"")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    out = tmp_path / "emb"
    cases = [
        ([f, "--out-dir", out, "-o", tmp_path / "x.npy"], "--out-dir and -o exclude each other"),
        (["--out-dir", out], "--out-dir needs input FILES"),
        (["-", "--out-dir", out], "--out-dir reads files, not stdin ('-')"),
        ([f, "--out-dir", tmp_path / "nope" / "emb"], "its parent folder does not exist"),
        ([f, tmp_path / "b" / "a.txt.gz", "--out-dir", out],
         f"two input files would both write {out / 'a.txt.jsonl'}"),
        ([f, "--scheduler", "sync"], "--scheduler goes with --out-dir"),
        ([f, "--out-dir", out, "--layer", "9"], "--layer must be in -3..2 (got 9)"),
        ([f, "--out-dir", tmp_path / "mine"], "was not written by embedkit"),
        ([tmp_path / "none.txt", "--out-dir", out], "none.txt: no such file"),
        ([f, "--out-dir", out, "--scheduler", "local:x"], "expected local:N"),
    ]
    for args, what in cases:
        code, stdout, err = run(["encoder", "embed", enc, *args], capsys)
        assert code == 2 and what in err and err.count("\n") == 1, (args, err)
        assert stdout == "" and not out.exists()


def test_dask_missing_is_the_connect_message(enc, tmp_path, capsys, monkeypatch):
    f = tmp_path / "a.txt"
    f.write_text("the cat\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code, _, err = run(["encoder", "embed", enc, f, "--out-dir", tmp_path / "emb", "--scheduler",
                        "local:2"], capsys)
    assert code == 2 and err == "embedkit: error: --scheduler 'local:2' needs Dask: pip install " \
                               "'embedkit[dask]'\n"
    assert not (tmp_path / "emb").exists()


@pytest.mark.parametrize("scheduler", [None, pytest.param("sync", marks=needs_dask)])
def test_bad_shard_names_file_and_line_and_keeps_the_done_ones(enc, tmp_path, capsys, scheduler):
    good, bad = tmp_path / "a.txt", tmp_path / "b.txt"
    good.write_text("the cat\n", encoding="utf-8")
    bad.write_bytes(b"fine\n\xff not utf-8\n")
    out = tmp_path / "emb"
    code, _, err = run(["encoder", "embed", enc, good, bad, "--format", "npy", "--out-dir", out,
                        "-q", *(["--scheduler", scheduler] if scheduler else [])], capsys)
    assert code == 2 and err.startswith(f"embedkit: error: {bad}:2: invalid UTF-8")
    assert err.count("\n") == 1
    assert sorted(os.listdir(out)) == ["a.txt.npy", "manifest.json"]  # no partial b.txt.npy
    m = json.loads((out / "manifest.json").read_text())
    assert [e["shard"] for e in m["shards"]] == [str(good)]
    code, _, _ = run(["encoder", "embed", enc, bad, "--out-dir", tmp_path / "new", "-q"], capsys)
    assert code == 2 and not (tmp_path / "new").exists()  # a failed first file: no folder


def test_bad_manifest_is_refused(enc, tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("the cat\n", encoding="utf-8")
    (tmp_path / "emb").mkdir()
    (tmp_path / "emb" / "manifest.json").write_text("[1, 2]\n")
    code, _, err = run(["encoder", "embed", enc, f, "--out-dir", tmp_path / "emb"], capsys)
    assert code == 2 and "manifest.json: not an embedkit manifest" in err


# ---- the shared LocalCluster --------------------------------------------------------------------

@needs_dask
@pytest.mark.parametrize("fmt", ["npy", "jsonl"])
def test_cluster_shards_equal_single_node(client, enc, tmp_path, capsys, fmt):  # noqa: F811
    lines = [" ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(i % 9)) for i in range(40)]
    files = shards(tmp_path / "s", lines, [3, 17, 18, 30])
    whole = tmp_path / "whole.txt"
    whole.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "emb"
    code, msg, err = run(["encoder", "embed", enc, tmp_path / "s" / "*.txt", "--format", fmt,
                          "--out-dir", out, "-q", "--scheduler", client.scheduler.address],
                         capsys)
    assert code == 0, err
    got = outputs(out, files, fmt)
    assert got == [single(enc, f, tmp_path / "ref", capsys, "--format", fmt) for f in files]
    assert_close(joined(got, fmt), joined([single(enc, whole, tmp_path / "w", capsys, "--format",
                                                  fmt)], fmt), fmt)
    loaded = client.run(lambda: [s[0] for s in sys.modules["embedkit.cli.encoder"]._WORKER_ENCODERS])
    assert list(loaded.values()) == [[str(enc)]] * 2  # warmed (loaded) on each worker, kept


@needs_dask
def test_failed_shard_on_local_workers_prints_one_line(enc, tmp_path):
    """The workers' own log of a failed task is silenced: the one error line is ours."""
    import subprocess

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\nnul\x00here\n")
    p = subprocess.run([sys.executable, "-m", "embedkit", "encoder", "embed", str(enc), str(bad),
                        "--out-dir", str(tmp_path / "emb"), "--scheduler", "local:1", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == f"embedkit: error: {bad}:2: NUL byte: this looks like a binary file, not text\n"
    assert not (tmp_path / "emb").exists()
