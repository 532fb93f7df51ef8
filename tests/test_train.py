"""`embedkit train` and `embedkit.train`: outputs, reproducibility, semantics on tiny corpora, bad input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from embedkit.cli import main
from embedkit.wordvec.trainer import as_vectors, fit
from embedkit.wordvec.args import TrainOptions
from embedkit.wordvec.vocab import build_vocab, spool_corpus
from embedkit.vectors.formats.native import load_native

ANIMALS = ["cat", "dog", "mouse", "horse", "cow"]
VEHICLES = ["car", "truck", "bus", "train", "bike"]


def topic_corpus(n=1500, seed=0) -> list[str]:
    """Sentences about one topic each: animal words share contexts, vehicle words share others."""
    rng = np.random.default_rng(seed)
    ctx = {"a": ["eats", "grass", "fur", "farm", "barn", "tail", "pet"],
           "v": ["road", "engine", "wheels", "drive", "fuel", "garage", "traffic"]}
    lines = []
    for _ in range(n):
        topic = "a" if rng.random() < 0.5 else "v"
        words = ANIMALS if topic == "a" else VEHICLES
        sent = list(rng.choice(words, 3)) + list(rng.choice(ctx[topic], 5)) + ["the", "a"]
        rng.shuffle(sent)
        lines.append(" ".join(sent))
    return lines


def small(**kw) -> TrainOptions:
    base = dict(dim=16, epochs=3, min_count=1, sample=0.0, window=3, seed=1)
    base.update(kw)
    return TrainOptions(**base)


def run_cli(*args) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def cos(v, a, b):
    x, y = v[a], v[b]
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


@pytest.mark.parametrize("model,subwords", [("cbow", "none"), ("skipgram", "none"), ("cbow", "char"),
                                            ("skipgram", "char")])
def test_related_words_end_nearer_than_unrelated(model, subwords):
    m = as_vectors(fit(topic_corpus(), small(model=model, subwords=subwords, epochs=5, buckets=5000)))
    within = np.mean([cos(m, a, b) for a in ANIMALS for b in ANIMALS if a < b] +
                     [cos(m, a, b) for a in VEHICLES for b in VEHICLES if a < b])
    across = np.mean([cos(m, a, b) for a in ANIMALS for b in VEHICLES])
    assert within > across + 0.3, (within, across)
    assert cos(m, "cat", "dog") > cos(m, "cat", "car")


def test_one_thread_with_a_seed_is_bit_reproducible():
    lines = topic_corpus(300)
    a = fit(lines, small(seed=5, subwords="char", buckets=1000))
    b = fit(lines, small(seed=5, subwords="char", buckets=1000))
    c = fit(lines, small(seed=6, subwords="char", buckets=1000))
    assert a.words == b.words
    for name in ("vectors", "input", "output", "subword_rows"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.vectors, c.vectors)


def test_each_epoch_visits_the_chunks_in_its_own_seeded_order(monkeypatch):
    import embedkit.wordvec.trainer as trainer
    import embedkit.wordvec.vocab as vocab

    a, b = trainer.epoch_order(3, 0, 50), trainer.epoch_order(3, 1, 50)
    assert sorted(a.tolist()) == list(range(50)) and sorted(b.tolist()) == list(range(50))
    assert not np.array_equal(a, b) and not np.array_equal(a, trainer.epoch_order(4, 0, 50))
    assert np.array_equal(a, trainer.epoch_order(3, 0, 50))
    monkeypatch.setattr(vocab, "CHUNK_TOKENS", 16)
    seen = []
    real = trainer.epoch_order
    monkeypatch.setattr(trainer, "epoch_order", lambda *a: seen.append(a) or real(*a))
    fit(topic_corpus(100), small(epochs=3))
    assert [e for _, e, _ in seen] == [0, 1, 2] and seen[0][2] > 20


def test_two_threads_train_and_learn():
    """Two hogwild workers really train: rows move from their initial values, output rows from
    zero, and words of one topic end nearer each other than words of two topics."""
    from embedkit.wordvec import kernels as K

    fds = len(os.listdir("/proc/self/fd"))
    m = fit(topic_corpus(600), small(threads=2, model="skipgram", epochs=5))
    assert len(os.listdir("/proc/self/fd")) == fds  # each worker closed its spool descriptor
    assert np.isfinite(m.vectors).all() and m.vectors.shape == (len(m.words), 16)
    init = np.empty((len(m.words), 16), np.float32)
    K.fill_uniform(init, 1, 0, 1.0 / 16)
    assert np.abs(m.input - init).mean() > 10 * np.abs(init).mean()
    assert (np.abs(m.output).sum(axis=1) > 0).all()
    v = as_vectors(m)
    within = np.mean([cos(v, a, b) for a in ANIMALS for b in ANIMALS if a < b] +
                     [cos(v, a, b) for a in VEHICLES for b in VEHICLES if a < b])
    across = np.mean([cos(v, a, b) for a in ANIMALS for b in VEHICLES])
    assert within > across + 0.3, (within, across)


def test_two_threads_hand_back_only_the_shared_rows():
    """With 2 threads, thread 1 trains private copies of the hot rows, appended to the input
    matrix; the model's rows are the shared ones only (the merge itself is checked in
    test_train_kernels)."""
    m = fit(topic_corpus(300), small(threads=2, subwords="char", buckets=500))
    assert m.subword_rows.shape == (500, 16) and m.input.shape == (len(m.words), 16)
    assert m.subword_rows.base is not None and m.subword_rows.base.shape[0] > len(m.words) + 500
    assert np.isfinite(m.vectors).all()


def test_vocabulary_order_min_count_and_max_vocab(tmp_path):
    lines = ["b a b c", "c b", "d"]
    sp = spool_corpus(lines, tmp_path)
    assert sp.tokens == 7
    v = build_vocab(sp, 1, None, "x")
    assert v.words == ["b", "c", "a", "d"] and v.counts.tolist() == [3, 2, 1, 1]  # ties: first seen
    assert build_vocab(sp, 2, None, "x").words == ["b", "c"]
    assert build_vocab(sp, 1, 3, "x").words == ["b", "c", "a"]
    ids = np.fromfile(sp.path, dtype=np.int32)
    text = [sp.words[i] if i >= 0 else "\n" for i in ids]
    assert " ".join(text).replace(" \n ", "\n").strip() == "b a b c\nc b\nd"


def test_spooled_chunks_end_at_sentence_boundaries(tmp_path, monkeypatch):
    import embedkit.wordvec.vocab as vocab

    monkeypatch.setattr(vocab, "CHUNK_TOKENS", 7)
    lines = [" ".join(["w%d" % (i % 13)] * (1 + i % 5)) for i in range(200)]
    sp = spool_corpus(lines, tmp_path)
    ids = np.fromfile(sp.path, dtype=np.int32)
    assert sp.chunks[0] == 0 and sp.chunks[-1] == len(ids) and len(sp.chunks) > 20
    assert all(ids[c - 1] == -1 for c in sp.chunks[1:])
    assert np.all(np.diff(sp.chunks) > 0)


def test_cli_writes_vec_and_native_model(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\ufeff" + "\r\n".join(topic_corpus(200)) + "\r\n", encoding="utf-8")
    out = tmp_path / "m"
    code, stdout, stderr = run_cli("train", str(corpus), "-o", str(out), "--dim", "8", "--min-count",
                                   "2", "--epochs", "1", "--subwords", "char", "--buckets", "500", "--quiet")
    assert code == 0, stderr
    assert stderr == "" and "m.vec" in stdout
    lines = (tmp_path / "m.vec").read_text(encoding="utf-8").splitlines()
    n, d = map(int, lines[0].split())
    assert d == 8 and n == len(lines) - 1
    meta, arrays = load_native(tmp_path / "m.ekv")
    words = [ln.split(" ")[0] for ln in lines[1:]]
    assert meta["words"] == words and "\r" not in "".join(words)
    assert np.all(np.diff(arrays["counts"]) <= 0)
    vec = np.array([[float(x) for x in ln.split(" ")[1:]] for ln in lines[1:]], np.float32)
    np.testing.assert_array_equal(vec, arrays["vectors"])
    assert arrays["subword_rows"].shape == (500, 8) and arrays["input"].shape == (n, 8)
    assert meta["subwords"] == {"kind": "char", "minn": 3, "maxn": 6, "buckets": 500}
    assert meta["settings"]["model"] == "cbow" and meta["settings"]["dim"] == 8
    # the .vec holds fastText word vectors: mean of the word row and its n-gram rows
    from embedkit.subwords import char_ngram_rows

    w = words[0]
    rows = np.vstack([arrays["input"][0], arrays["subword_rows"][char_ngram_rows(w, 3, 6, 500)]])
    np.testing.assert_allclose(arrays["vectors"][0], rows.mean(0), rtol=1e-5, atol=1e-7)


def test_vec_loads_in_gensim(tmp_path):
    kv_mod = pytest.importorskip("gensim.models", reason="gensim not installed: no interop check")
    m = as_vectors(fit(topic_corpus(200), small()))
    m.save_vec(tmp_path / "m.vec")
    kv = kv_mod.KeyedVectors.load_word2vec_format(str(tmp_path / "m.vec"))
    assert kv.index_to_key == m.words
    np.testing.assert_allclose(kv["cat"], m["cat"], rtol=1e-6)


def test_stdin_corpus(tmp_path):
    r = subprocess.run([sys.executable, "-m", "embedkit", "train", "-", "-o", str(tmp_path / "s"),
                        "--dim", "4", "--min-count", "1", "--epochs", "1", "--quiet"],
                       input="a b c\nb c d\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.vec").read_text().splitlines()[0] == "4 4"


def test_single_huge_line_is_trained_in_bounded_pieces(tmp_path):
    corpus = tmp_path / "one.txt"
    rng = np.random.default_rng(0)
    words = np.array(["w%d" % i for i in range(50)])
    corpus.write_text(" ".join(words[rng.integers(0, 50, 600_000)]))  # ~2.5 MB, no newline
    m = fit([str(corpus)], small(dim=4, epochs=1))
    assert m.settings["tokens"] == 600_000 and len(m.words) == 50


@pytest.mark.parametrize("content,args,message", [
    (b"", [], "c.txt: the corpus is empty"),
    (b"   \n\n", [], "c.txt: the corpus is empty"),
    (b"a b c\n", ["--min-count", "2"], "no word occurs at least --min-count 2 times"),
    (b"ok line\nbad \xff byte\n", [], "c.txt:2: invalid UTF-8 (byte 0xff at column 5)"),
    (b"a\x00b\n", [], "c.txt:1: NUL byte"),
    (b"a b\n", ["--dim", "0"], "--dim must be between 1 and 10000, got 0"),
    (b"a b\n", ["--lr", "-1"], "--lr must be in (0, 10], got -1"),
    (b"a b\n", ["--window", "100000"], "--window must be between 1 and 1000"),
    (b"a b\n", ["--sample", "2"], "--sample must be in [0, 1)"),
    (b"a b\n", ["--subwords", "bpe"], "--subwords bpe needs --tokenizer"),
    (b"a b\n", ["--subwords", "char", "--minn", "4", "--maxn", "3"], "--maxn must be between 4 and 100"),
    (b"a b\n", ["--dim", "10000", "--subwords", "char", "--buckets", "1000000000"], "lower --dim, --buckets"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, content, args, message):
    (tmp_path / "c.txt").write_bytes(content)
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m"), "--min-count", "1",
              "--quiet", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.vec").exists() and not (tmp_path / "m.ekv").exists()


def test_bad_paths(tmp_path, capsys):
    (tmp_path / "c.txt").write_text("a b\n")
    for argv, message in [
        (["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "m")], "missing.txt: no such file"),
        (["train", str(tmp_path), "-o", str(tmp_path / "m")], "is a folder, expected a file"),
        (["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "no" / "m")], "does not exist"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv + ["--min-count", "1", "--quiet"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err, err


def test_divergence_stops_with_a_hint_to_lower_lr():
    import re

    from embedkit.errors import TrainingError

    lines = [" ".join(["a", "b"] * 50)] * 200
    with pytest.raises(TrainingError, match=r"training diverged \(NaN/inf in the vectors after "
                                            r"(\d+)% of training\) with --lr 10; try a smaller "
                                            r"--lr, e\.g\. 2\.5$") as e:
        fit(lines, small(lr=10.0, dim=50, epochs=20, negative=20, window=10))
    assert 0 <= int(re.search(r"after (\d+)%", str(e.value)).group(1)) < 100


def test_model_option_reaches_the_kernel(monkeypatch):
    """The plan's options are what the kernel is called with (the kernel itself is checked
    against reference gradients in test_train_kernels)."""
    import embedkit.wordvec.trainer as trainer

    calls = []
    real = trainer.K.train_chunk

    def spy(*args):
        calls.append(args[13:17])  # skipgram, window, negative, lr
        return real(*args)

    monkeypatch.setattr(trainer.K, "train_chunk", spy)
    for model in ("cbow", "skipgram"):
        calls.clear()
        fit(topic_corpus(100), small(model=model, window=4, negative=3, lr=0.02, epochs=2))
        assert len(calls) == 2 and set(calls) == {(model == "skipgram", 4, 3, 0.02)}


def test_a_failing_worker_stops_the_others(monkeypatch):
    """An error in one thread's chunk ends the run: the other thread stops taking chunks."""
    import threading

    import embedkit.wordvec.trainer as trainer

    calls, lock = [], threading.Lock()
    real = trainer.K.train_chunk

    def first_fails(*args):
        with lock:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
        time.sleep(0.001)  # each other chunk takes a while, as a real one does
        return real(*args)

    monkeypatch.setattr(trainer.K, "train_chunk", first_fails)
    with pytest.raises(RuntimeError, match="boom"):
        fit(topic_corpus(100), small(threads=2, epochs=200))
    assert len(calls) < 50  # not the 200 chunks the other worker had left


def test_progress_shows_the_running_loss_and_the_decaying_lr(monkeypatch):
    import functools
    import re

    import embedkit.wordvec.trainer as trainer
    from embedkit.progress import run_workers

    shown = []

    class Bar:  # records what the tqdm bar would show
        def __init__(self, *a, **kw):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, k):
            self.n += k

        def set_postfix_str(self, text, refresh=True):
            shown.append((self.n, text))

    monkeypatch.setattr(trainer, "bar", Bar)
    monkeypatch.setattr(trainer, "run_workers", functools.partial(run_workers, every=0.0005))
    m = fit(topic_corpus(1500), small(epochs=8, negative=5))
    total = 8 * m.settings["train_words"]
    losses = []
    for done, text in shown:
        loss, lr, _ = re.fullmatch(r"loss=(\S+) lr=(\S+) w/s/thread=(\S+)", text).groups()
        assert float(lr) == pytest.approx(0.05 * max(1 - done / total, 1e-4), abs=1.5e-5)
        if loss != "-":
            losses.append(float(loss))
    # a mean per prediction of 1 + 5 logistic losses, ln 2 each at the start (output rows are 0)
    assert len(set(losses)) >= 2 and all(0.1 < x <= 6 * np.log(2) + 1e-6 for x in losses), losses


def test_a_worker_that_cannot_open_the_spool_reports_it(monkeypatch):
    import embedkit.wordvec.trainer as trainer

    class NoOpen:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def open(*args):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trainer, "os", NoOpen())
    with pytest.raises(PermissionError):
        fit(topic_corpus(50), small(epochs=1))


def test_ctrl_c_leaves_no_output(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(topic_corpus(2000)))
    out = tmp_path / "m"
    p = subprocess.Popen([sys.executable, "-m", "embedkit", "train", str(corpus), "-o", str(out),
                          "--dim", "8", "--min-count", "1", "--epochs", "100000"],
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                         # a runner that starts jobs in the background ignores SIGINT; undo that
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    deadline = time.time() + 60
    while b"training" not in seen and time.time() < deadline:
        seen += os.read(p.stderr.fileno(), 4096)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, (seen + err)[-500:]
    assert b"Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["c.txt"]


def test_python_api_returns_vectors_with_oov_lookup():
    from embedkit import train

    m = train(topic_corpus(200), dim=8, min_count=1, epochs=1, subwords="char", buckets=1000)
    assert m.dim == 8 and "cat" in m and "cats" not in m
    # out of vocabulary: the exact mean of its char n-gram rows (minn 3, maxn 6, fastText hash)
    from embedkit.subwords import fnv1a32

    grams = ["<ca", "<cat", "<cats", "<cats>", "cat", "cats", "cats>", "ats", "ats>", "ts>"]
    rows = m.subword_rows[[fnv1a32(g.encode()) % 1000 for g in grams]]
    np.testing.assert_allclose(m["cats"], rows.astype(np.float64).mean(0), rtol=1e-5, atol=1e-7)
    assert np.abs(m["cats"]).max() > 0
    assert train(["a b c", "b c d"], dim=4, min_count=1, epochs=1).words[:2] == ["b", "c"]
    defaults = train(topic_corpus(200), epochs=1).settings  # every other option at its default
    assert {k: defaults[k] for k in ("model", "dim", "window", "negative", "min_count", "sample",
                                     "lr", "threads", "seed", "subwords", "minn", "maxn",
                                     "buckets")} == {
        "model": "cbow", "dim": 100, "window": 5, "negative": 5, "min_count": 5, "sample": 1e-4,
        "lr": 0.05, "threads": 1, "seed": 0, "subwords": "none", "minn": 3, "maxn": 6,
        "buckets": 2_000_000}
    assert train(topic_corpus(200), min_count=1).settings["epochs"] == 5
    from embedkit.errors import InputError, UsageError

    with pytest.raises(UsageError, match=r"^--dim must be between 1 and 10000, got 0$"):
        train(["a b"], dim=0)
    with pytest.raises(InputError, match=r"^corpus: no word occurs at least --min-count 5 times"):
        train(["a b c", "a b"])


def test_gzip_input_lowercase_and_max_vocab(tmp_path):
    import gzip

    with gzip.open(tmp_path / "c.txt.gz", "wt") as f:
        f.write("The the THE cat Cat dog\n" * 3)
    code, _, err = run_cli("train", str(tmp_path / "c.txt.gz"), "-o", str(tmp_path / "m.vec"), "--dim",
                           "4", "--min-count", "1", "--epochs", "1", "--lowercase", "--max-vocab", "2",
                           "--quiet")
    assert code == 0, err
    lines = (tmp_path / "m.vec").read_text().splitlines()
    assert lines[0] == "2 4" and [ln.split()[0] for ln in lines[1:]] == ["the", "cat"]
    assert (tmp_path / "m.ekv").exists() and not (tmp_path / "m.vec.vec").exists()


def test_train_help_and_usage_errors_do_not_import_numba_or_numpy():
    code = ("import sys\nfrom embedkit.cli import main\n"
            "for argv in (['train', '--help'], ['train', 'x', '-o', 'y', '--dim', 'abc']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        print(e.code)\n"
            "print('numba' in sys.modules, 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-3:] == ["0", "2", "False False"], r.stdout + r.stderr
    assert "--subwords [none|char|bpe]" in r.stdout


def test_the_progress_figures():
    """The running loss is the mean over the chunks finished since the last figure, kept while
    none has finished ('-' before the first); lr decays linearly to 1e-4 of its start."""
    from embedkit.wordvec.trainer import postfix, running_loss

    none = np.zeros(2)
    loss, last = running_loss(np.zeros(2), none, float("nan"))
    assert np.isnan(loss) and last is none
    loss, last = running_loss(np.array([6.0, 3.0]), none, loss)
    assert loss == 2.0 and last.tolist() == [6.0, 3.0]
    assert running_loss(np.array([6.0, 3.0]), last, 2.0) == (2.0, last)
    assert running_loss(np.array([10.0, 7.0]), last, 2.0)[0] == 1.0
    assert running_loss(np.array([6.0, 5.0]), last, 2.0)[0] == 0.0  # new targets at zero loss
    assert postfix(float("nan"), 0, 100, 0.0, 1, 0.05) == "loss=- lr=0.05000 w/s/thread=0"
    assert postfix(1.23456, 50, 100, 2.0, 2, 0.05) == "loss=1.2346 lr=0.02500 w/s/thread=12"
    assert postfix(1.0, 100, 100, 1.0, 1, 0.1) == "loss=1.0000 lr=0.00001 w/s/thread=100"


def test_library_defaults_keep_case_and_print_nothing(tmp_path, capfd):
    from embedkit import train

    p = tmp_path / "c.txt"
    p.write_text("Apple apple Banana banana\n" * 50)
    v = train(str(p), dim=8, min_count=1, epochs=1)
    assert v.words == ["Apple", "apple", "Banana", "banana"]
    fit(topic_corpus(100), small(epochs=1))
    assert capfd.readouterr().err == ""


def test_corpus_names_and_sizes_for_messages_and_the_bar(tmp_path):
    from embedkit.wordvec.trainer import _corpus_name, _input_size

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("x y\n")
    b.write_text("z\n")
    assert _corpus_name(a) == str(a) and _corpus_name([a]) == str(a)
    assert _corpus_name([a, b]) == "corpus" and _corpus_name(iter(["x"])) == "corpus"
    assert _input_size([a, b]) == 6 and _input_size(a) == 4
    assert _input_size(["-"]) is None and _input_size(iter(["x y"])) is None
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(Exception, match=r"empty\.txt"):
        fit(str(tmp_path / "empty.txt"), small())


def test_nan_in_the_output_rows_alone_is_divergence(monkeypatch):
    from embedkit.errors import TrainingError
    from embedkit.wordvec import trainer

    def poison(sp, vocab, ptr, plans, wts, keep, win, wout, opts, quiet):
        wout[0, 0] = np.nan

    monkeypatch.setattr(trainer, "_run_epochs", poison)
    with pytest.raises(TrainingError, match="training diverged"):
        fit(topic_corpus(50), small())


def test_divergence_names_how_far_training_got(monkeypatch):
    from embedkit.errors import TrainingError
    from embedkit.wordvec import trainer

    def diverge(tokens, remap, keep, ptr, sub, wts, hot, first, win, wout, negtab, sig, logsig, sg,
                window, neg, lr, total, progress, tid, rng, losses, stop):
        progress[tid] = int(0.6 * total)
        return trainer.K.DIVERGED

    monkeypatch.setattr(trainer.K, "train_chunk", diverge)
    with pytest.raises(TrainingError, match=r"after 60% of training"):
        fit(topic_corpus(200), small())


def test_a_spool_that_cannot_be_opened_is_an_error(monkeypatch):
    from embedkit.wordvec import trainer

    real = os.open

    def refuse(path, flags, *a, **k):
        if flags == os.O_RDONLY and not os.path.isdir(path):  # the workers' spool readers
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *a, **k)

    monkeypatch.setattr(trainer.os, "open", refuse)
    with pytest.raises(PermissionError):
        fit(topic_corpus(200), small(threads=2))


def test_divergence_in_one_thread_stops_the_others(monkeypatch):
    from embedkit.errors import TrainingError
    from embedkit.wordvec import trainer

    calls = []

    def chunk(tokens, remap, keep, ptr, sub, wts, hot, first, win, wout, negtab, sig, logsig, sg,
              window, neg, lr, total, progress, tid, rng, losses, stop):
        calls.append(tid)
        if len(calls) == 1:
            return trainer.K.DIVERGED
        time.sleep(0.05)
        return trainer.K.OK

    monkeypatch.setattr(trainer.K, "train_chunk", chunk)
    with pytest.raises(TrainingError, match="training diverged"):
        fit(topic_corpus(1500), small(threads=2, epochs=20))
    assert len(calls) < 10
