"""Dask counting (``embedkit.cluster``): the same counts, merges, counts file and train vocabulary
as the single-node path, for any sharding; errors name the shard's file and line."""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[dask]'")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from embedkit import cluster  # noqa: E402
from embedkit.bpe.count import count, count_shard, merge_counts  # noqa: E402
from embedkit.bpe.formats import wordcounts  # noqa: E402
from embedkit.bpe.model import BPETokenizer  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.errors import InputError, UsageError  # noqa: E402
from embedkit.wordvec.vocab import build_vocab, spool_corpus  # noqa: E402

TEXT = ("The cat sat on the mat.\nThe dog sat on the log!\n  spaced\ttab\r\n"
        "café naïve 123 4567 it's we'll\n\xff\xfe raw bytes\n" * 3)
WORDS = "the cat sat on mat dog log café naïve it's we'll\n" * 20


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _shards(folder: Path, data: bytes, cuts: list[int], gz: bool = False) -> list[str]:
    """``data`` cut at the line boundaries ``cuts`` (line indices) into 00.txt, 01.txt... (.gz)"""
    lines = data.splitlines(keepends=True)
    bounds = [0, *sorted(set(cuts)), len(lines)]
    folder.mkdir(exist_ok=True)
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        name = f"{i:02d}.txt" + (".gz" if gz else "")
        out.append(str(_write(folder / name, b"".join(lines[a:b]), gz)))
    return out


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def _merges(counts, vocab_size=400, **kw):
    from embedkit.bpe.from_counts import tokenizer

    tok = tokenizer(counts, vocab_size, **kw)
    return tok.to_files()


@pytest.fixture(scope="module")
def client():
    """One loopback LocalCluster for the module, made as ``--scheduler local:2`` makes it:
    LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)."""
    with cluster.connect("local:2") as runner:
        info = runner.client.scheduler_info()["workers"]
        assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
        assert all(a.startswith("tcp://127.0.0.1:") for a in info)
        runner.warm()
        yield runner.client


# ---- no Dask without --scheduler ----------------------------------------------------------------

def test_single_node_path_never_imports_dask(tmp_path):
    corpus = _write(tmp_path / "c.txt", TEXT.encode("latin-1"))
    script = (
        "import sys\nfrom embedkit.cli import main\n"
        "for args in (['bpe', 'learn', '--help'], ['bpe', 'learn', sys.argv[1], '-o', sys.argv[2],"
        " '--vocab-size', '300', '-q'], ['bpe', 'count-words', sys.argv[1], '-o', sys.argv[3],"
        " '-q']):\n"
        "    try:\n        main(args)\n"
        "    except SystemExit as e:\n        assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n")
    r = subprocess.run([sys.executable, "-c", script, str(corpus), str(tmp_path / "tok"),
                        str(tmp_path / "c.tsv")], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "tok" / "merges.txt").is_file() and (tmp_path / "c.tsv").is_file()


# ---- globs and scheduler specs ------------------------------------------------------------------

def test_expand_sorts_matches_and_keeps_literal_names(tmp_path):
    for name in ("b.txt", "a.txt", "c.gz", "10.txt"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "d.txt").mkdir()
    literal = tmp_path / "[x].txt"
    literal.write_text("y\n")
    got = cluster.expand([str(tmp_path / "*.txt"), str(literal), "-"])
    assert got == [str(tmp_path / n) for n in ("10.txt", "[x].txt", "a.txt", "b.txt")] + \
        [str(literal), "-"]
    with pytest.raises(InputError, match="no file matches"):
        cluster.expand([str(tmp_path / "*.none")])


@pytest.mark.parametrize("spec", ["local:0", "local:x", "local:", "http://h:1", "tcp://h",
                                  "tcp://h:1/x", "", "local:100000"])
def test_bad_scheduler_spec_is_a_usage_error(spec):
    with pytest.raises(UsageError, match="--scheduler") as e:
        cluster.connect(spec)
    assert "\n" not in str(e.value)


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    import dask

    corpus = _write(tmp_path / "c.txt", b"a b\n")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, out, err = _run(["bpe", "learn", str(corpus), "-o", str(tmp_path / "t"),
                               "--vocab-size", "300", "--scheduler", "tcp://127.0.0.1:9"],
                              capsys)
    assert code == 2 and err.startswith("embedkit: error: --scheduler") and err.count("\n") == 1
    assert not (tmp_path / "t").exists()


# ---- the synchronous scheduler: exact counts, errors -------------------------------------------

@pytest.mark.parametrize("byte_level,pattern", [(True, None), (False, None),
                                                (True, r"\p{L}+|\s+|[^\s\p{L}]+")])
def test_sync_counts_equal_single_node(tmp_path, byte_level, pattern):
    data = (TEXT if byte_level else WORDS).encode("utf-8" if not byte_level else "latin-1")
    whole = _write(tmp_path / "whole.txt", data)
    shards = _shards(tmp_path / "s", data, [1, 2, 7], gz=True)
    with cluster.connect("sync") as runner:
        got = cluster.bpe_counts(runner, shards, byte_level=byte_level, pattern=pattern)
    ref = count([whole], byte_level=byte_level, pattern=pattern)
    as_counter = (lambda c: c if isinstance(c, Counter) else c.counter())
    assert as_counter(got) == as_counter(ref) and sum(as_counter(got).values()) > 20
    assert _merges(got, byte_level=byte_level) == _merges(ref, byte_level=byte_level)


def test_merge_counts_sums_exactly_beyond_int32():
    big = Counter({"a": 2**40, "b": 1})
    assert merge_counts(big, Counter({"a": 2**40, "c": 3})) == {"a": 2**41, "b": 1, "c": 3}


@pytest.mark.parametrize("byte_level", [True, False])
def test_a_shard_the_worker_cannot_see_is_an_error(tmp_path, byte_level):
    with pytest.raises(InputError, match="no such file"):
        count_shard(str(tmp_path / "gone.txt"), byte_level=byte_level)


def test_shard_table_round_trips(tmp_path):
    f = _write(tmp_path / "c.txt", TEXT.encode("latin-1"))
    table = count_shard(f)
    assert table.counter().counter() == count([f]).counter()
    doubled = merge_counts(table, table).counter().counter()
    assert doubled == {w: 2 * n for w, n in count([f]).counter().items()}


@pytest.mark.parametrize("byte_level,data,line", [(True, b"ok\nok\nNUL\x00here\n", 3),
                                                  (False, b"ok\n\xff bad\n", 2)])
def test_failed_shard_names_file_and_line(tmp_path, byte_level, data, line):
    good = _write(tmp_path / "a.txt", b"fine words\n")
    bad = _write(tmp_path / "b.txt", data)
    with cluster.connect("sync") as runner, pytest.raises(InputError) as e:
        cluster.bpe_counts(runner, [str(good), str(bad)], byte_level=byte_level)
    assert (e.value.path, e.value.line) == (str(bad), line)


def test_cli_failed_shard_exits_2_and_writes_nothing(tmp_path, capsys):
    good = _write(tmp_path / "a.txt", b"fine words\n")
    _write(tmp_path / "b.txt", b"x\nbad\x00\n")
    for cmd in (["learn", "--vocab-size", "300", "-o", str(tmp_path / "tok")],
                ["count-words", "-o", str(tmp_path / "c.tsv")]):
        code, out, err = _run(["bpe", *cmd, str(tmp_path / "*.txt"), "--scheduler", "sync", "-q"],
                              capsys)
        assert code == 2 and out == ""
        assert err == f"embedkit: error: {tmp_path / 'b.txt'}:2: NUL byte: this looks like a " \
                      "binary file, not text\n"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"] and good.exists()


def test_scheduler_refuses_stdin(tmp_path, capsys):
    code, _, err = _run(["bpe", "learn", "-", "-o", str(tmp_path / "t"), "--vocab-size", "300",
                         "--scheduler", "sync"], capsys)
    assert code == 2 and "stdin" in err


# ---- the counts file ----------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=12))
def test_escape_round_trips_any_bytes(raw):
    word = raw.decode("utf-8", "surrogateescape")
    text = wordcounts.escape(word)
    assert "\t" not in text and "\n" not in text and "\r" not in text
    text.encode("utf-8")  # writable as UTF-8
    back = wordcounts.unescape(text, "f", 2)
    assert back.encode("utf-8", "surrogateescape") == raw


def test_escape_is_exact_on_examples():
    assert wordcounts.escape("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert wordcounts.escape(b"\xff x".decode("utf-8", "surrogateescape")) == "\\xff x"
    assert wordcounts.escape("café") == "café"


def test_counts_file_exact_text_and_round_trip(tmp_path):
    counts = Counter({" b": 2, "\n": 5, " a": 2, "é": 2, "\t\\": 1})
    path = tmp_path / "c.tsv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        wordcounts.dump(f, counts, wordcounts.settings(True, False, None))
    lines = path.read_text("utf-8").split("\n")
    assert json.loads(lines[0][len(wordcounts.MAGIC):])["mode"] == "byte-level"
    assert lines[1:] == ["\\n\t5", " a\t2", " b\t2", "é\t2", "\\t\\\\\t1", ""]
    assert wordcounts.load(path)[0] == counts


@pytest.mark.parametrize("body,line,what", [
    (None, 1, "not a word-counts file"),
    ("a\t1\na\t2\n", 3, "listed twice"),
    ("a\t0\n", 2, "COUNT"),
    ("a 1\n", 2, "COUNT"),
    ("a\t99999999999999999999\n", 2, "COUNT"),
    ("a\\q\t1\n", 2, "unknown escape"),
    ("\t1\n", 2, "empty word"),
    ("", None, "no words"),
    (b"a\xff\t1\n", 2, "invalid UTF-8"),
])
def test_bad_counts_files(tmp_path, body, line, what):
    path = tmp_path / "c.tsv"
    header = wordcounts.MAGIC + json.dumps(wordcounts.settings(True, False, None)) + "\n"
    if body is None:
        path.write_bytes(b"a\t1\n")
    else:
        path.write_bytes(header.encode() + (body if isinstance(body, bytes) else body.encode()))
    with pytest.raises(InputError, match=what) as e:
        wordcounts.load(path)
    assert e.value.line == line


@pytest.mark.parametrize("meta", [{"version": 2}, {"mode": "char"}, {"pattern": "(unclosed"},
                                  {"pattern": "a*"}, {"mode": "word"}, {"lowercase": "no"}])
def test_lying_counts_header(tmp_path, meta):
    path = tmp_path / "c.tsv"
    head = {**wordcounts.settings(True, False, None), **meta}
    path.write_text(wordcounts.MAGIC + json.dumps(head) + "\na\t1\n", "utf-8")
    with pytest.raises(InputError) as e:
        wordcounts.load(path)
    assert e.value.line == 1


def test_count_words_then_from_counts_equals_learning_the_corpus(tmp_path, capsys):
    data = TEXT.encode("latin-1")
    whole = _write(tmp_path / "whole.txt", data)
    _shards(tmp_path / "s", data, [3, 5])
    glob_ = str(tmp_path / "s" / "*.txt")
    for opts in ([], ["--lowercase", "--special-token", "<s>"], ["--pattern", "cl100k"]):
        learn_opts = [o for o in opts if o not in ("--special-token", "<s>")]
        code, _, _ = _run(["bpe", "learn", str(whole), "-o", str(tmp_path / "a"),
                           "--vocab-size", "320", "-q", *opts], capsys)
        assert code == 0
        code, _, _ = _run(["bpe", "count-words", glob_, "-o", str(tmp_path / "c.tsv"),
                           "--scheduler", "sync", "-q", *learn_opts], capsys)
        assert code == 0
        specials = [o for o in opts if o in ("--special-token", "<s>")]
        code, _, _ = _run(["bpe", "learn", "--from-counts", str(tmp_path / "c.tsv"), "-o",
                           str(tmp_path / "b"), "--vocab-size", "320", "-q", *specials], capsys)
        assert code == 0
        for name in ("vocab.json", "merges.txt", "embedkit.json"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    code, _, err = _run(["bpe", "learn", "--from-counts", str(tmp_path / "c.tsv"), "-o",
                         str(tmp_path / "b"), "--vocab-size", "320", "--no-byte-level"], capsys)
    assert code == 2 and "--from-counts" in err
    code, _, err = _run(["bpe", "learn", "-o", str(tmp_path / "b"), "--vocab-size", "320"], capsys)
    assert code == 2 and "CORPUS" in err


# ---- bpe encode --out-dir ----------------------------------------------------------------------

def _expected_ids(tok, data: bytes) -> bytes:
    """What single-node `bpe encode --ids` writes for ``data`` (short lines, byte-level)."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    out = [" ".join(map(str, tok.encode(line))) for line in lines[:-1]]
    tail = [] if lines[-1] == "" else [" ".join(map(str, tok.encode(lines[-1])))]
    return ("\n".join(out + tail) + ("\n" if lines[-1] == "" else "")).encode()


def test_encode_out_dir_equals_single_node_and_skips_done_files(tmp_path, capsysbinary):
    data = TEXT.encode("latin-1")
    whole = _write(tmp_path / "whole.txt", data)
    tok = BPETokenizer.train([whole], 300, min_frequency=1)
    tok.save(tmp_path / "tok")
    shards = _shards(tmp_path / "s", data, [2, 9], gz=True)
    out = tmp_path / "ids"
    args = ["bpe", "encode", "-t", str(tmp_path / "tok"), "--ids", str(tmp_path / "s" / "*.gz"),
            "--out-dir", str(out), "-q"]
    code, _, _ = _run([*args, "--scheduler", "sync"], capsysbinary)
    assert code == 0
    code, single, _ = _run(["bpe", "encode", "-t", str(tmp_path / "tok"), "--ids", str(whole)],
                           capsysbinary)
    names = [Path(p).name.removesuffix(".gz") + ".ids" for p in shards]
    joined = b"".join((out / n).read_bytes() for n in names)
    assert joined == single == _expected_ids(tok, data)
    m = json.loads((out / "manifest.json").read_text())
    assert [e["output"] for e in m["shards"]] == names and m["ids"] is True
    import hashlib

    for e in m["shards"]:
        body = (out / e["output"]).read_bytes()
        assert e["sha256"] == hashlib.sha256(body).hexdigest()
        assert (e["lines"], e["tokens"]) == (body.count(b"\n"), len(body.split()))
    (out / names[1]).write_bytes(b"1 2 3\n")  # a damaged output is redone, the others skipped
    before = (out / names[0]).stat().st_mtime_ns
    code, msg, _ = _run(args, capsysbinary)
    assert code == 0 and b"(2 already done)" in msg
    assert (out / names[0]).stat().st_mtime_ns == before
    assert b"".join((out / n).read_bytes() for n in names) == single


def test_encode_out_dir_bad_file_exits_2_and_leaves_no_folder(tmp_path, capsys):
    tok = BPETokenizer.train(["a b c a b"], 260, min_frequency=1)
    tok.save(tmp_path / "tok")
    _write(tmp_path / "bad.txt", b"x\x00\n")
    code, _, err = _run(["bpe", "encode", "-t", str(tmp_path / "tok"), str(tmp_path / "bad.txt"),
                         "--out-dir", str(tmp_path / "o"), "--scheduler", "sync"], capsys)
    assert code == 2 and f"{tmp_path / 'bad.txt'}:1: NUL byte" in err
    assert not (tmp_path / "o").exists()
    code, _, err = _run(["bpe", "encode", "-t", str(tmp_path / "tok"), str(tmp_path / "bad.txt"),
                         "--scheduler", "sync"], capsys)
    assert code == 2 and "--out-dir" in err


# ---- train's vocabulary -------------------------------------------------------------------------

def _vocab(sp):
    v = build_vocab(sp, 1, None, "c")
    return v.words, v.counts.tolist(), sp.tokens


def test_train_counts_give_the_single_node_vocabulary(tmp_path):
    data = ("b a c a b d\ne e f\n" * 3 + "z y x w\nc d\n").encode()
    whole = _write(tmp_path / "whole.txt", data)
    shards = _shards(tmp_path / "s", data, [2, 7, 9])
    ref = spool_corpus([whole], tmp_path)
    with cluster.connect("sync") as runner:
        got = cluster.train_counts(runner, shards)
    assert _vocab(got) == _vocab(ref)
    assert _vocab(got)[0][:6] == ["b", "a", "e", "c", "d", "f"]  # count ties: first seen first


# ---- one LocalCluster: any sharding gives the same results --------------------------------------

@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(st.sampled_from("ab cdé\t'!1xy"), max_size=12), min_size=1,
                      max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=6))
def test_any_sharding_gives_identical_results(client, tmp_path_factory, lines, cuts):
    tmp = tmp_path_factory.mktemp("prop")
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    whole = _write(tmp / "whole.txt", data)
    shards = _shards(tmp / "s", data, [c for c in cuts if 0 < c < len(lines)], gz=True)
    runner = cluster.Runner(client)
    got = cluster.bpe_counts(runner, shards)
    ref = count([whole])
    assert _merges(got, 300, min_frequency=1) == _merges(ref, 300, min_frequency=1)
    tok = BPETokenizer.train([whole], 300, min_frequency=1)
    assert _merges(got, 300, min_frequency=1) == tok.to_files()

    def dumped(counts):
        from io import StringIO

        f = StringIO()
        wordcounts.dump(f, counts.counter(), wordcounts.settings(True, False, None))
        return f.getvalue()

    assert dumped(got) == dumped(ref)
    if data.split():
        assert _vocab(cluster.train_counts(runner, shards)) == _vocab(spool_corpus([whole], tmp))
    tok.save(tmp / "tok")
    with pytest.raises(SystemExit) as e:
        main(["bpe", "encode", "-t", str(tmp / "tok"), "--ids", *shards, "--out-dir",
              str(tmp / "ids"), "-q", "--scheduler", client.scheduler.address])
    assert e.value.code == 0
    joined = b"".join((tmp / "ids" / (Path(p).name.removesuffix(".gz") + ".ids")).read_bytes()
                     for p in shards)
    assert joined == _expected_ids(tok, data)


def test_failed_shard_on_the_cluster_names_file_and_line(client, tmp_path):
    good = _write(tmp_path / "a.txt", b"fine words\n")
    bad = _write(tmp_path / "b.txt", b"ok\n\xff bad\n")
    with pytest.raises(InputError) as e:
        cluster.bpe_counts(cluster.Runner(client), [str(good), str(bad)], byte_level=False)
    assert str(e.value) == f"{bad}:2: invalid UTF-8 (byte 0xff at column 1)"


def _slow_count(path):
    time.sleep(0.4)
    return count_shard(path, byte_level=False)


def test_killed_worker_gives_the_identical_result(client, tmp_path):
    data = "".join(f"w{i % 17} w{i % 5} x{i}\n" for i in range(400)).encode()
    whole = _write(tmp_path / "whole.txt", data)
    shards = _shards(tmp_path / "s", data, list(range(25, 400, 25)))
    pids = client.run(os.getpid)
    killer = threading.Timer(0.6, os.kill, (pids[sorted(pids)[0]], signal.SIGKILL))
    killer.start()
    try:
        got = cluster.Runner(client).map_reduce(_slow_count, shards, merge_counts)
    finally:
        killer.cancel()
    assert got == count([whole], byte_level=False)
    assert client.run(os.getpid) != pids  # a worker was really replaced


# ---- train --scheduler: the vocabulary counted on workers, the same files -----------------------

TRAIN_TEXT = "".join(f"w{i % 13} w{i % 7} the a{i % 31} {'rare%d' % i if i % 9 == 0 else 'x'}\n"
                     for i in range(600))


def _train_cli(capsys, corpus, out, *extra):
    code, stdout, err = _run(["train", *corpus, "-o", str(out), "--threads", "1", "--seed", "4",
                              "--dim", "8", "--epochs", "2", "--min-count", "2", "-q", *extra],
                             capsys)
    assert code == 0, err
    return (out.with_suffix(".vec").read_bytes(), out.with_suffix(".ekv").read_bytes())


def test_spool_does_not_depend_on_how_the_corpus_is_cut(tmp_path, monkeypatch):
    """Ids and chunk cuts are those of the whole corpus for any sharding (so training on shards,
    with or without --scheduler, writes the files of the whole)."""
    from embedkit.wordvec import vocab as V

    monkeypatch.setattr(V, "CHUNK_TOKENS", 7)
    data = TRAIN_TEXT.encode()
    whole = _write(tmp_path / "whole.txt", data)

    def spooled(paths):
        sp = spool_corpus(paths, tmp_path)
        with open(sp.path, "rb") as f:
            return f.read(), list(sp.chunks), sp.words, sp.counts[:len(sp.words)].tolist()

    ref = spooled([whole])
    assert len(ref[1]) > 100 and ref[0].count(b"\xff\xff\xff\xff") == 600  # one end per line
    for cuts in ([1], [5, 6, 7, 300], list(range(10, 600, 10))):
        assert spooled(_shards(tmp_path / f"s{len(cuts)}", data, cuts)) == ref
    monkeypatch.setattr(V, "_SLICE_CHARS", 50)  # the text handed to the spooler in small slices
    assert spooled([whole]) == ref


def test_train_scheduler_writes_the_single_node_files(tmp_path, capsys):
    data = TRAIN_TEXT.encode()
    whole = _write(tmp_path / "whole.txt", data)
    _shards(tmp_path / "s", data, [100, 101, 350])
    ref = _train_cli(capsys, [str(whole)], tmp_path / "ref")
    assert _train_cli(capsys, [str(tmp_path / "s" / "*.txt")], tmp_path / "shards") == ref
    got = _train_cli(capsys, [str(tmp_path / "s" / "*.txt")], tmp_path / "dask",
                     "--scheduler", "sync")
    assert got == ref
    assert b"\nrare" not in ref[0] and b"\nw12 " in ref[0]  # min-count applied to the whole


def test_train_scheduler_on_the_cluster(client, tmp_path, capsys):
    data = TRAIN_TEXT.upper().encode()
    whole = _write(tmp_path / "whole.txt", data)
    shards = _shards(tmp_path / "s", data, [50, 51, 52, 400], gz=True)
    ref = _train_cli(capsys, [str(whole)], tmp_path / "ref", "--lowercase")
    got = _train_cli(capsys, shards, tmp_path / "dask", "--lowercase",
                     "--scheduler", client.scheduler.address)
    assert got == ref and b"\nthe " in ref[0]


def test_train_scheduler_bad_inputs(tmp_path, capsys):
    _write(tmp_path / "a.txt", b"fine words\n")
    _write(tmp_path / "b.txt", b"x\nbad\x00\n")
    out = tmp_path / "v"
    code, stdout, err = _run(["train", str(tmp_path / "*.txt"), "-o", str(out), "--scheduler",
                              "sync", "-q", "--min-count", "1"], capsys)
    assert (code, stdout) == (2, "")
    assert err == f"embedkit: error: {tmp_path / 'b.txt'}:2: NUL byte: this looks like a " \
                  "binary file, not text\n"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]
    code, _, err = _run(["train", "-", "-o", str(out), "--scheduler", "sync"], capsys)
    assert code == 2 and err == "embedkit: error: --scheduler reads files, not stdin ('-')\n"
    code, _, err = _run(["train", str(tmp_path / "a.txt"), "-o", str(out), "--scheduler", "x:1"],
                        capsys)
    assert code == 2 and "--scheduler 'x:1': expected local:N" in err
