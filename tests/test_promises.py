"""README promises that no other module checks: each test names the promise it holds the code to.

Tiny inputs throughout (a few hundred lines, models of dim 16-32), so the module stays fast."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.encoder import checkpoint, trainer
from embedkit.errors import TrainingError
from embedkit.store import read_store
from cli_run import interrupt_after

SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .",
             "my friend walked along the river bank .", "the teacher put money in the bank .",
             "a child slept under the old tree .", "the bird flew over a house ."]
SMALL = dict(dim=16, heads=2, ffn=32, layers=1, max_len=16, batch_size=4, warmup=2)
ENC_CLI = ["--dim", 16, "--heads", 2, "--ffn", 32, "--layers", 1, "--max-len", 16,
           "--batch-size", 4, "--warmup", 2, "-q"]


def cli(*args, input=None, env=None, **kw):
    """``python -m embedkit ARGS`` in a child process."""
    return subprocess.run([sys.executable, "-m", "embedkit", *map(str, args)], input=input,
                          capture_output=True, env=env, **kw)


@pytest.fixture(scope="module")
def enc_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("promises")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES[i % 6] for i in range(120)) + "\n", encoding="utf-8")
    tok = BPETokenizer.train([str(corpus)], 300)
    tok.save(d / "tok")
    return d, corpus, tok


# --- BPE -------------------------------------------------------------------------------------

def test_lowercase_recorded_in_tokdir_is_applied_on_encode_after_load(tmp_path):
    """`--lowercase`: recorded in TOKDIR, so encoding lowercases too (API load and CLI)."""
    lines = ["The Cat sat on the Mat", "the cat and THE hat"] * 30
    BPETokenizer.train(lines, 300, lowercase=True).save(tmp_path / "tok")
    tok = BPETokenizer.load(tmp_path / "tok")
    assert tok.tokens("THE CAT Sat") == tok.tokens("the cat sat") == ["the", "Ġcat", "Ġsat"]
    r = cli("bpe", "encode", "-t", tmp_path / "tok", input=b"THE CAT\n")
    assert r.returncode == 0 and r.stdout == b"the \xc4\xa0cat\n", r.stderr


def test_merges_identical_to_hf_on_megabytes_of_dev_txt(shared_data, tmp_path):
    """The same merges as HF tokenizers, on a real-size slice (3 MB) of dev.txt."""
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    with open(shared_data / "corpus" / "dev.txt", "rb") as f:
        src = f.read(3_000_000)
    path = tmp_path / "head.txt"
    path.write_bytes(src[:src.rindex(b"\n") + 1])
    hf = tokenizers.ByteLevelBPETokenizer()
    hf.train([str(path)], vocab_size=6000, min_frequency=2, show_progress=False)
    hf.save_model(str(tmp_path))
    ours = BPETokenizer.train([path], 6000, min_frequency=2, threads=2).to_files()
    theirs = (tmp_path / "merges.txt").read_text(encoding="utf-8")
    assert theirs.count("\n") > 5000
    assert ours["merges.txt"] == theirs
    assert json.loads(ours["vocab.json"]) == json.loads((tmp_path / "vocab.json").read_text("utf-8"))


class _Interrupting:
    """A file that takes part of the first write, then gets Ctrl-C."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)

    def write(self, data):
        self._f.write(data[:max(1, len(data) // 2)])
        raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["learning", "writing"])
def test_bpe_learn_interrupted_leaves_nothing(tmp_path, monkeypatch, capsys, where):
    """Ctrl-C during `bpe learn` (while learning, or with the TOKDIR half staged): exit 130, no
    TOKDIR and no staging folder left."""
    import embedkit.io as eio
    from embedkit.bpe import trainer as bpe_trainer
    from embedkit.cli import main

    (tmp_path / "c.txt").write_text("the cat sat on the mat\n" * 50)
    real = eio.atomic_dir

    @contextmanager
    def half_staged(*a, **kw):
        with real(*a, **kw) as tmp:
            (tmp / "vocab.json").write_text("{")
            raise KeyboardInterrupt
            yield tmp

    def stop(*a, **kw):
        raise KeyboardInterrupt

    if where == "learning":
        monkeypatch.setattr(bpe_trainer, "learn", stop)
    else:
        monkeypatch.setattr(eio, "atomic_dir", half_staged)
    with pytest.raises(SystemExit) as e:
        main(["bpe", "learn", str(tmp_path / "c.txt"), "-o", str(tmp_path / "tok"),
              "--vocab-size", "300", "-q"])
    assert e.value.code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


@pytest.mark.parametrize("out", ["o.vec", "o.bin", "o.ekv"])
def test_convert_interrupted_mid_write_leaves_nothing(tmp_path, monkeypatch, capsys, out):
    """Ctrl-C while `convert` writes: exit 130, no output file and no temp file."""
    import embedkit.store
    from embedkit.cli import main
    from embedkit.vectors.formats import word2vec_bin, word2vec_text
    from embedkit.vectors.model import Vectors

    words = [f"w{i}" for i in range(50)]
    Vectors.from_arrays(words, np.ones((50, 4), np.float32)).save(tmp_path / "m.vec", format="vec")
    real = embedkit.io.atomic_write

    @contextmanager
    def interrupting(*a, **kw):
        with real(*a, **kw) as f:
            yield _Interrupting(f)

    for mod in (embedkit.store, word2vec_bin, word2vec_text):
        monkeypatch.setattr(mod, "atomic_write", interrupting)
    with pytest.raises(SystemExit) as e:
        main(["convert", str(tmp_path / "m.vec"), str(tmp_path / out), "-q"])
    assert e.value.code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.vec"]


# --- word vectors ----------------------------------------------------------------------------

def test_lines_over_10000_tokens_are_split_into_sentences():
    """Lines longer than 10,000 kept tokens are trained as several sentences."""
    from embedkit.wordvec import kernels as K

    n = 25_000
    tokens = np.append(np.arange(n, dtype=np.int32) % 7, np.int32(-1))
    remap = np.arange(7, dtype=np.int32)
    keep = np.full(7, 1 << 32, np.int64)
    sen = np.empty(K.MAX_SENT, np.int32)
    i, x, lengths = 0, np.uint64(12345), []
    while i < len(tokens):
        i, slen, words, x = K._read_sentence(tokens, i, len(tokens), remap, keep, sen, x)
        lengths.append(slen)
    assert K.MAX_SENT == 10_000 and lengths == [10_000, 10_000, 5_000]


def test_100_mb_line_without_newline_is_read_in_bounded_memory(tmp_path):
    """A 100 MB file without a newline is read in pieces: the reader's peak RSS stays far below
    the line (measured in a child, ru_maxrss before and after reading)."""
    path = tmp_path / "one.txt"
    word = b"abcdefghij" * 9 + b"xyz "  # 94-byte words, so the spool is small
    with open(path, "wb") as f:
        block = word * (1 << 14)
        for _ in range(100 * (1 << 20) // len(block) + 1):
            f.write(block)
    size = path.stat().st_size
    assert size > 100 * (1 << 20)
    code = ("import resource, sys, tempfile, pathlib\n"
            "from embedkit.wordvec.vocab import spool_corpus\n"
            "import numpy\n"
            "spool_corpus(['x y\\n'], pathlib.Path(tempfile.mkdtemp()))\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "sp = spool_corpus([sys.argv[1]], pathlib.Path(tempfile.mkdtemp()))\n"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print(sp.tokens, base, peak)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    tokens, base, peak = map(int, r.stdout.split())
    assert tokens == size // len(word)
    assert (peak - base) * 1024 < 40 * (1 << 20), f"reading grew RSS by {(peak - base) // 1024} MiB"


def test_train_and_bpe_learn_are_identical_across_processes_with_other_hash_seeds(tmp_path):
    """`--seed S --threads 1` gives identical output files, run after run: two processes with
    different PYTHONHASHSEED (so set/dict order of str differs) write the same bytes."""
    corpus = tmp_path / "c.txt"
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)] + ["é", "ß", "东京"]
    corpus.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(400)) + "\n")
    script = ("import sys\nfrom embedkit.cli import main\n"
              "i = sys.argv.index('::')\n"
              "for argv in (sys.argv[1:i], sys.argv[i + 1:]):\n"
              "    try:\n        main(argv)\n    except SystemExit as e:\n"
              "        assert e.code == 0, (argv, e.code)\n")
    outs = []
    for seed in ("1", "2"):
        o = tmp_path / f"run{seed}"
        o.mkdir()
        argv = ["train", corpus, "-o", o / "v", "--dim", 8, "--epochs", 1, "--min-count", 1,
                "--threads", 1, "--seed", 3, "--subwords", "char", "--buckets", 500, "-q"]
        argv += ["::", "bpe", "learn", corpus, "-o", o / "tok", "--vocab-size", 300, "--threads", 1, "-q"]
        r = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONHASHSEED=seed))
        assert r.returncode == 0, r.stderr
        outs.append({p.relative_to(o).as_posix(): p.read_bytes() for p in o.rglob("*") if p.is_file()})
    assert set(outs[0]) == {"v.vec", "v.ekv", "tok/vocab.json", "tok/merges.txt", "tok/embedkit.json"}
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], name


def test_import_embedkit_loads_neither_numpy_nor_numba():
    """`import embedkit` loads neither numpy nor numba (the API is imported lazily)."""
    code = ("import sys, embedkit\n"
            "print('numpy' in sys.modules, 'numba' in sys.modules)\n"
            "embedkit.Vectors\n"
            "print('numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["False False", "True"]


# --- queries ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def query_model(tmp_path_factory):
    from embedkit.vectors.model import Vectors

    d = tmp_path_factory.mktemp("q")
    words = ["king", "queen", "man", "woman", "apple", "King", "Paris"]
    vecs = np.array([[1, 1, 0, 0], [1, 0.9, 0.1, 0], [0, 1, 0, 0], [0, 0.9, 0.1, 0],
                     [0, 0, 1, 1], [0, 0, 1, 0.9], [1, 0, 0, 1]], np.float32)
    Vectors.from_arrays(words, vecs, counts=np.arange(70, 0, -10)).save(d / "m.ekv")
    return d / "m.ekv"


def test_eval_case_sensitive_turns_upper_casing_off(query_model, tmp_path):
    """Words are upper-cased for lookup (the most frequent spelling wins); `--case-sensitive`
    turns this off."""
    (tmp_path / "s.tsv").write_text("KING\tqueen\t9\nking\tman\t5\napple\tKing\t1\n")
    r = cli("eval", query_model, "--similarity", tmp_path / "s.tsv", "--json")
    ci = json.loads(r.stdout)
    r = cli("eval", query_model, "--similarity", tmp_path / "s.tsv", "--json", "--case-sensitive")
    cs = json.loads(r.stdout)
    assert r.returncode == 0, r.stderr
    # case-insensitive: "King" is KING's most frequent spelling "king", so apple-King is used
    assert (ci["used"], cs["used"]) == (3, 2)  # case-sensitive: "KING" is not a word
    # gold 5 > 1 but cos(king, man) = 0.71 < cos(apple, King) = 0.99; with KING-queen added: 1
    assert ci["spearman"] == pytest.approx(1.0) and cs["spearman"] == pytest.approx(-1.0)


def test_nn_stdin_batches_answer_every_line_in_order(query_model, monkeypatch, capsys):
    """`nn MODEL < words.txt`: one query per line, answered per 1,024 lines, in query order."""
    from embedkit.cli import main
    from embedkit.vectors.model import Vectors
    import io

    sizes = []
    real = Vectors.most_similar_many

    def spy(self, words, *a, **kw):
        sizes.append(len(words))
        return real(self, words, *a, **kw)

    monkeypatch.setattr(Vectors, "most_similar_many", spy)
    queries = (["king", "apple", "man"] * 700)[:2050]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(queries).encode() + b"\n")))
    with pytest.raises(SystemExit) as e:
        main(["nn", str(query_model), "-k", "1", "-q"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and sizes == [1024, 1024, 2]
    answers = out.split("\n\n")
    assert len(answers) == 2050
    expect = {"king": "queen\t", "apple": "King\t", "man": "woman\t"}
    assert all(a.startswith(expect[q]) for q, a in zip(queries, answers, strict=True))


def test_nn_interactive_prompt_on_a_terminal(query_model):
    """`nn MODEL` prompts when stdin is a terminal; Ctrl-D quits with exit 0."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-m", "embedkit", "nn", str(query_model), "-k", "1"])
    out = b""

    def read_until(marker: bytes, count: int = 1) -> bytes:
        """Read the terminal until ``marker`` was seen ``count`` times, EOF, or 120 s of silence
        (a hung child fails the test instead of hanging the suite)."""
        import select

        nonlocal out
        while out.count(marker) < count:
            if not select.select([fd], [], [], 120)[0]:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return out

    try:
        read_until(b"query word? ")
        os.write(fd, b"king\n")
        read_until(b"query word? ", 2)
        os.write(fd, b"\x04")
        read_until(b"\x00never")  # to EOF
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            time.sleep(2)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    assert "type a word (Ctrl-D to quit)" in text and "queen\t" in text, text
    assert os.waitstatus_to_exitcode(status) == 0


# --- encoder ---------------------------------------------------------------------------------

def test_encoder_ctrl_c_exits_130_with_a_complete_checkpoint(enc_setup, tmp_path):
    """Ctrl-C exits 130, leaving the last checkpoint, complete (it loads), and no temp files."""
    d, corpus, _ = enc_setup
    p = subprocess.Popen([sys.executable, "-m", "embedkit", "encoder", "train", str(corpus), "-t",
                          str(d / "tok"), "-o", str(tmp_path / "e"), "--steps", "100000",
                          "--checkpoint-every", "3", *map(str, ENC_CLI)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = tmp_path / "e" / checkpoint.FILE
    err = interrupt_after(p, ckpt)  # the first checkpoint (step 0 or 3), then a few more steps
    assert p.returncode == 130, err
    meta, params, _ = checkpoint.load(tmp_path / "e")
    assert meta["train"]["step"] % 3 == 0 and all(np.isfinite(a).all() for a in params.values())
    assert [q.name for q in (tmp_path / "e").iterdir()] == [checkpoint.FILE]


def test_non_finite_gradient_stops_naming_the_step(enc_setup, tmp_path, monkeypatch):
    """NaN/inf gradient: training stops naming the step; the last good checkpoint stays."""
    _, corpus, tok = enc_setup
    real = trainer._batch_loss
    calls = []

    def poisoned(*args, **kw):
        out = list(real(*args, **kw))
        calls.append(1)
        if len(calls) == 3:
            g = out[1]
            next(iter(g.values())).flat[0] = np.inf
        return tuple(out)

    monkeypatch.setattr(trainer, "_batch_loss", poisoned)
    with pytest.raises(TrainingError, match=r"step 3: the gradient is not finite.*step 2"):
        trainer.train([str(corpus)], tok, tmp_path / "e", **dict(SMALL, steps=6, checkpoint_every=2))
    assert checkpoint.load(tmp_path / "e")[0]["train"]["step"] == 2


def test_resume_with_more_steps_extends_the_run(enc_setup, tmp_path):
    """`--resume --steps N` with N above the checkpoint's step continues to step N."""
    d, corpus, _ = enc_setup
    _, _, tok = enc_setup
    trainer.train([str(corpus)], tok, tmp_path / "e", steps=3, threads=1, **SMALL)
    base = ["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e", *ENC_CLI]
    _, first = read_store(tmp_path / "e" / checkpoint.FILE)
    r = cli(*base, "--steps", 7, "--resume", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 7
    meta, later = read_store(tmp_path / "e" / checkpoint.FILE)
    assert meta["train"]["step"] == 7
    assert not np.array_equal(first["p.wte"], later["p.wte"])


def test_heldout_loss_is_null_below_20_lines(enc_setup, tmp_path):
    """`heldout_loss` is null when there is nothing to hold out: fewer than 20 lines."""
    d, _, _ = enc_setup
    small = tmp_path / "small.txt"
    small.write_text("\n".join(SENTENCES * 3) + "\n")  # 18 lines
    r = cli("encoder", "train", small, "-t", d / "tok", "-o", tmp_path / "e", "--steps", 2,
            "--json", *ENC_CLI)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["heldout_loss"] is None and s["unigram_entropy"] > 0


def test_specials_declared_in_the_tokdir_are_used(enc_setup):
    """A TOKDIR that declares [PAD]/[MASK]/[SEP] gives their ids; otherwise they are appended."""
    from embedkit.encoder.vocab import PieceVocab

    _, corpus, plain = enc_setup
    tok = BPETokenizer.train([str(corpus)], 300, special_tokens=["[MASK]", "<x>", "[SEP]"])
    v = PieceVocab(tok)
    assert (v.mask, v.sep) == (tok.token_to_id("[MASK]"), tok.token_to_id("[SEP]")) == (0, 2)
    assert v.pad == tok.vocab_size and v.size == tok.vocab_size + 1
    assert not v.is_regular[[0, 1, 2, v.pad]].any() and v.is_regular[3:tok.vocab_size].all()
    p = PieceVocab(plain)
    assert (p.pad, p.mask, p.sep) == (plain.vocab_size, plain.vocab_size + 1, plain.vocab_size + 2)
    assert tok.encode("[MASK]x") == [0] + tok.encode("x")  # the declared special, never split


def test_init_embeddings_matches_a_piece_by_its_text(enc_setup, tmp_path):
    """`--init-embeddings`: a piece is looked up by its BPE string, then by its text (`bank`)."""
    from embedkit.encoder.network import init_params
    from embedkit.encoder.vocab import PieceVocab

    _, _, tok = enc_setup
    vocab = PieceVocab(tok)
    (piece,) = tok.tokens(" bank")
    assert piece == "Ġbank"
    i = tok.token_to_id(piece)
    (tmp_path / "v.vec").write_text("1 4\nbank 3 0 0 4\n", encoding="utf-8")
    cfg = dict(vocab=vocab.size, dim=4, heads=2, layers=1, ffn=8, max_len=8,
               positions="sinusoidal", objective="mlm")
    params = init_params(cfg, np.random.default_rng(0))
    before = params["wte"].copy()
    assert trainer.init_embeddings(params, vocab, tmp_path / "v.vec", quiet=True) >= 1
    np.testing.assert_allclose(params["wte"][i], [0.6, 0, 0, 0.8], rtol=1e-6)
    changed = set(np.flatnonzero((params["wte"] != before).any(axis=1)).tolist())
    assert i in changed and all(vocab.decode([j]).strip() == "bank" for j in changed)


def test_two_thread_encoder_training_learns_end_to_end(enc_setup, tmp_path):
    """`--threads 2` trains the same model: context predicts blanks better than frequencies."""
    _, corpus, tok = enc_setup
    s = trainer.train([str(corpus)], tok, tmp_path / "e", steps=120, threads=2, quiet=True,
                      **dict(SMALL, dim=32, ffn=64, batch_size=16, warmup=10, lr=1e-2))
    assert s["steps"] == 120 and s["heldout_loss"] < s["unigram_entropy"] - 0.5


@pytest.fixture(scope="module")
def mlm_clm(enc_setup):
    from embedkit import Encoder

    d, corpus, tok = enc_setup
    arch = dict(SMALL, dim=32, ffn=64, batch_size=32, warmup=10, lr=1e-2, threads=1, quiet=True)
    mlm = Encoder.train(corpus, tok, d / "mlm", steps=100, **arch)
    clm = Encoder.train(corpus, tok, d / "clm", steps=80, objective="clm", **arch)
    return mlm, clm, tok


def test_a_space_before_mask_belongs_to_the_blank(mlm_clm, monkeypatch):
    """"the [MASK] sat": the blank carries the space (so " cat" is one candidate piece)."""
    from embedkit import Encoder

    mlm, _, tok = mlm_clm
    seen = []
    real = Encoder._probs

    def spy(self, ids, rows, *a, **kw):
        seen.append((ids[0].tolist(), rows.tolist()))
        return real(self, ids, rows, *a, **kw)

    monkeypatch.setattr(Encoder, "_probs", spy)
    (cands,) = mlm.fill("the cat sat on the [MASK] .", k=3)
    m = mlm.vocab.mask
    left = tok.encode("the cat sat on the")  # without its trailing space
    assert seen == [(left + [m] + tok.encode(" ."), [len(left)])]
    assert all(piece.startswith(" ") for piece, _ in cands)  # after "the", a word with its space


def test_generate_conditions_on_the_last_max_len_pieces(mlm_clm, monkeypatch):
    """`generate` conditions on the last --max-len pieces of prompt + generated text."""
    from embedkit import Encoder

    _, clm, tok = mlm_clm
    seen = []
    real = Encoder._probs

    def spy(self, ids, rows, *a, **kw):
        seen.append(ids[0].tolist())
        return real(self, ids, rows, *a, **kw)

    monkeypatch.setattr(Encoder, "_probs", spy)
    prompt = "a dog ran to the park . " * 3 + "the teacher put money in"
    ids = tok.encode(prompt)
    assert len(ids) > 16
    out = clm.generate(prompt, tokens=3, temperature=0)
    new = tok.encode(out)[len(ids):]
    assert len(seen) == 3 and seen[0] == ids[-16:]
    assert seen[2] == (ids + new)[:len(ids) + 2][-16:]
    tail = tok.decode(ids[-16:])  # the same last 16 pieces alone continue the same way
    assert tok.encode(tail) == ids[-16:]
    assert out == prompt[:-len(tail)] + clm.generate(tail, tokens=3, temperature=0)
