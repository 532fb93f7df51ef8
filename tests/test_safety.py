"""Issue 9: never destroy user data, never half-write it, and keep the CLI's promises.

Each test is named after the defect it pins; each failed on the code before the fix.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from embedkit.cli import main

SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .",
             "my friend walked along the river bank .", "the teacher put money in the bank .",
             "a child slept under the old tree .", "the bird flew over a house ."]
TINY = ["--dim", 16, "--heads", 2, "--ffn", 32, "--layers", 1, "--max-len", 16,
        "--batch-size", 4, "--warmup", 2, "--threads", 1, "--quiet"]


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def snapshot(folder) -> dict:
    """Every file and folder under ``folder``: relative path -> bytes (None for a folder)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def user_folder(path):
    """A folder of someone's own work: files, a sub-folder, and names embedkit itself uses."""
    path.mkdir()
    (path / "important.txt").write_bytes(b"keep me\n")
    (path / "vocab.json").write_bytes(b'{"my": "own file"}')
    (path / "enc_old").mkdir()
    (path / "enc_old" / "notes.md").write_bytes(b"\x00\x01 binary too")
    return snapshot(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("safety")
    path = d / "corpus.txt"
    path.write_text("\n".join(SENTENCES[i % 6] for i in range(120)) + "\n")
    return path


@pytest.fixture(scope="module")
def tokdir(corpus):
    from embedkit.bpe.model import BPETokenizer

    BPETokenizer.train([str(corpus)], 300).save(corpus.parent / "tok")
    return corpus.parent / "tok"


@pytest.fixture(scope="module")
def encoders(corpus, tokdir):
    """A tiny mlm and a tiny clm encoder (4 steps each)."""
    out = {}
    for objective in ("mlm", "clm"):
        path = corpus.parent / objective
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in ["encoder", "train", corpus, "-t", tokdir, "-o", path, "--steps",
                                   4, "--objective", objective, *TINY]])
        assert e.value.code == 0
        out[objective] = path
    return out


@pytest.fixture(scope="module")
def vectors_model(corpus):
    from embedkit import train

    m = train([str(corpus)], dim=8, min_count=1, epochs=1, subwords="char", buckets=500, seed=1)
    path = corpus.parent / "m.ekv"
    m.save(path)
    return path


# ---- 1. output folders: never delete or overwrite what embedkit did not write -----------------

def test_bpe_learn_into_a_folder_of_user_files_keeps_every_byte(corpus, tmp_path, capsys):
    models = tmp_path / "models"
    before = user_folder(models)
    code, out, err = run(["bpe", "learn", corpus, "-o", models, "--vocab-size", 300], capsys)
    assert code == 2 and "not empty and was not written by embedkit" in err and "\n" == err[-1:]
    assert err.count("\n") == 1 and out == ""
    assert snapshot(models) == before
    assert sorted(os.listdir(tmp_path)) == ["models"]


def test_bpe_learn_to_dot(corpus, tmp_path, capsys, monkeypatch):
    busy = tmp_path / "busy"
    before = user_folder(busy)
    monkeypatch.chdir(busy)
    code, _, err = run(["bpe", "learn", corpus, "-o", ".", "--vocab-size", 300, "--quiet"], capsys)
    assert code == 2 and "Traceback" not in err
    assert snapshot(busy) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, _, err = run(["bpe", "learn", corpus, "-o", ".", "--vocab-size", 300, "--quiet"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(empty)) == ["embedkit.json", "merges.txt", "vocab.json"]


def test_relearning_a_tokdir_replaces_only_its_three_files(corpus, tmp_path, capsys):
    tok = tmp_path / "tok"
    assert run(["bpe", "learn", corpus, "-o", tok, "--vocab-size", 270, "--quiet"], capsys)[0] == 0
    (tok / "README.md").write_bytes(b"my notes about this tokenizer")
    first = snapshot(tok)
    assert run(["bpe", "learn", corpus, "-o", tok, "--vocab-size", 300, "--quiet"], capsys)[0] == 0
    now = snapshot(tok)
    assert sorted(now) == sorted(first) and now["README.md"] == b"my notes about this tokenizer"
    assert now["vocab.json"] != first["vocab.json"]


def test_encoder_and_demo_refuse_a_folder_of_user_files(corpus, tokdir, tmp_path, capsys):
    enc = tmp_path / "enc"
    before = user_folder(enc)
    code, _, err = run(["encoder", "train", corpus, "-t", tokdir, "-o", enc, "--steps", 2, *TINY],
                       capsys)
    assert code == 2 and "was not written by embedkit" in err
    assert snapshot(enc) == before
    demo = tmp_path / "demo"
    before = user_folder(demo)
    code, _, err = run(["demo", "--corpus", corpus, "--out", demo, "--quiet"], capsys)
    assert code == 2 and "was not written by embedkit" in err
    assert snapshot(demo) == before


# ---- 2. --resume never goes backwards -------------------------------------------------------

def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(corpus, tokdir, tmp_path, capsys):
    enc = tmp_path / "enc"
    assert run(["encoder", "train", corpus, "-t", tokdir, "-o", enc, "--steps", 4, *TINY],
               capsys)[0] == 0
    before = snapshot(enc)
    for more in (["--steps", 3], ["--steps", 4], ["--epochs", "0.001"]):
        code, out, err = run(["encoder", "train", corpus, "-t", tokdir, "-o", enc, "--resume",
                              "--json", "--quiet", *more], capsys)
        assert code == 2 and out == "" and "checkpoint is already at step 4" in err, (more, err)
        assert snapshot(enc) == before


# ---- 4. train's .vec/.ekv pair appears together or not at all ---------------------------------

def test_interrupted_output_phase_keeps_the_previous_pair(corpus, tmp_path, capsys, monkeypatch):
    name = tmp_path / "m"
    args = ["train", corpus, "-o", name, "--dim", 8, "--min-count", 1, "--epochs", 1, "--quiet",
            "--threads", 1]
    assert run(args, capsys)[0] == 0
    before = snapshot(tmp_path)
    assert sorted(before) == ["m.ekv", "m.vec"]
    from embedkit.vectors.model import Vectors

    def interrupted(self, path):
        with open(path, "wb") as f:
            f.write(b"12 8\nhalf")
        raise KeyboardInterrupt

    for method in ("save_vec", "save_native"):
        with monkeypatch.context() as m:
            m.setattr(Vectors, method, interrupted)
            code, _, _ = run(args + ["--seed", 7], capsys)
        assert code == 130
        assert snapshot(tmp_path) == before, method  # no new .ekv beside the old .vec, no temps


def test_ctrl_c_during_the_final_renames_waits_until_the_pair_is_in(tmp_path):
    import signal

    from embedkit.io import atomic_files

    (tmp_path / "m.ekv").write_bytes(b"old ekv")
    (tmp_path / "m.vec").write_bytes(b"old vec")
    renamed = []
    real = os.replace

    def replace(src, dst):
        real(src, dst)
        renamed.append(os.path.basename(dst))
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the two renames

    with pytest.raises(KeyboardInterrupt):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(os, "replace", replace)
            with atomic_files([tmp_path / "m.ekv", tmp_path / "m.vec"]) as (ekv, vec):
                ekv.write_bytes(b"new ekv")
                vec.write_bytes(b"new vec")
    assert renamed == ["m.ekv", "m.vec"]
    assert snapshot(tmp_path) == {"m.ekv": b"new ekv", "m.vec": b"new vec"}


# ---- 5. demo leaves nothing behind when it fails ------------------------------------------------

def test_demo_failures_leave_no_output_folder(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "dd"
    code, _, err = run(["demo", "--seed", -1, "--out", out, "--quiet"], capsys)
    assert code == 2 and "--seed" in err and not out.exists()
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("one two three four\n" * 400).encode() + b"five \x00 six\n")
    code, _, err = run(["demo", "--corpus", bad, "--out", out, "--quiet"], capsys)
    assert code == 2 and "NUL" in err and not out.exists()
    bad.write_bytes(b"caf\xe9 ol\xe9 \xff\xfe hello world\n")  # invalid UTF-8, too few words
    code, _, err = run(["demo", "--corpus", bad, "--out", out, "--quiet"], capsys)
    assert code == 2 and "too small" in err and not out.exists()
    big = tmp_path / "big.txt"
    big.write_text(" ".join(f"w{i % 50}" for i in range(3000)) + "\n")
    import embedkit

    def interrupt(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedkit, "train", interrupt)
    code, _, _ = run(["demo", "--corpus", big, "--out", out, "--quiet", "--threads", 1], capsys)
    assert code == 130 and not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "big.txt"]


# ---- 6. one-line errors, and memory sized by the corpus ---------------------------------------

@pytest.mark.parametrize("args", [
    ["bpe", "learn", "{corpus}", "-o", "{tmp}/t", "--vocab-size", "99999999999999999999"],
    ["bpe", "learn", "{corpus}", "-o", "{tmp}/t", "--vocab-size", "9223372036854775807"],
    ["encoder", "train", "{corpus}", "-t", "{tok}", "-o", "{tmp}/e", "--seed", "-1"],
    ["encoder", "generate", "{clm}", "the", "--seed", "-1"],
    ["encoder", "generate", "{clm}", "the", "--temperature", "nan"],
    ["encoder", "generate", "{clm}", "the", "--temperature", "inf"],
])
def test_bad_numbers_are_one_line_errors(args, corpus, tokdir, encoders, tmp_path, capsys):
    argv = [a.format(corpus=corpus, tok=tokdir, tmp=tmp_path, clm=encoders["clm"]) for a in args]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.startswith("embedkit: error: ") and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == []


def test_merge_tables_are_sized_by_what_the_corpus_can_give(monkeypatch):
    from embedkit.bpe import kernels
    from embedkit.bpe.model import BPETokenizer

    seen = []
    real = kernels.learn_merges

    def spy(sym, wstart, wcount, tok_buf, tok_off, n_tokens, vocab_size, min_frequency):
        seen.append((int(sym.size) - (len(wstart) - 1) + n_tokens, vocab_size))
        return real(sym, wstart, wcount, tok_buf, tok_off, n_tokens, vocab_size, min_frequency)

    monkeypatch.setattr(kernels, "learn_merges", spy)
    tok = BPETokenizer.train(SENTENCES, 500_000_000, min_frequency=1)
    (cap, asked), = seen
    assert asked == cap < 400 and tok.vocab_size <= cap


# ---- 7. documented inputs and options are accepted ---------------------------------------------

def test_train_takes_a_subword_nmt_codes_file(corpus, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    assert run(["bpe", "learn", corpus, "-o", codes, "--vocab-size", 80, "--no-byte-level",
                "--format", "subword-nmt", "--quiet"], capsys)[0] == 0
    code, out, err = run(["train", corpus, "-o", tmp_path / "v", "--dim", 8, "--min-count", 1,
                          "--epochs", 1, "--subwords", "bpe", "--tokenizer", codes, "--quiet"],
                         capsys)
    assert code == 0, err
    from embedkit.vectors.model import load

    m = load(tmp_path / "v.ekv")
    assert m.scheme.kind == "bpe" and m.has_vector("catmat")  # an unseen word, from its pieces


# ---- 8. fill keeps a piece's leading space ---------------------------------------------------

def test_fill_text_output_tells_pieces_apart(encoders, capsys):
    enc = encoders["mlm"]
    code, out, _ = run(["encoder", "fill", enc, "the cat [MASK] on", "-k", 1000], capsys)
    assert code == 0
    printed = [json.loads(line.rsplit("\t", 1)[0]) for line in out.splitlines()]
    code, js, _ = run(["encoder", "fill", enc, "the cat [MASK] on", "-k", 1000, "--json"], capsys)
    (cands,) = json.loads(js)["masks"]
    assert printed == [p for p, _ in cands]
    assert len(set(printed)) == len(printed) > 256
    assert " the" in printed and "the" in printed


# ---- 9. smaller promises -------------------------------------------------------------------

def test_max_len_1_names_the_real_reason(corpus, tokdir, tmp_path, capsys):
    code, out, err = run(["encoder", "train", corpus, "-t", tokdir, "-o", tmp_path / "e",
                          "--steps", 2, *TINY, "--max-len", 1], capsys)
    assert code == 0, err
    assert "--max-len 1" in out and "fewer than 20 lines" not in out


def test_generate_prints_one_line(encoders, capsys, monkeypatch):
    from embedkit.encoder.model import Encoder

    monkeypatch.setattr(Encoder, "generate", lambda self, p, n, t, s: p + " went.\nThen more\n")
    code, out, _ = run(["encoder", "generate", encoders["clm"], "It", "--tokens", 3000], capsys)
    assert code == 0 and out == "It went.\n"
    code, out, _ = run(["encoder", "generate", encoders["clm"], "It", "--json"], capsys)
    assert json.loads(out) == {"text": "It went."}


def test_embed_npy_into_a_closed_pipe_exits_0(encoders, tmp_path):
    src = tmp_path / "lines.txt"
    src.write_text("\n".join(SENTENCES * 100) + "\n")
    p = subprocess.Popen([sys.executable, "-m", "embedkit", "encoder", "embed", str(encoders["mlm"]),
                          str(src), "--format", "npy", "--quiet", "--threads", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.read(10).startswith(b"\x93NUMPY")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0 and err == b""


def test_train_output_must_be_a_name_not_a_folder(corpus, tmp_path, capsys):
    (tmp_path / "outd").mkdir()
    code, _, err = run(["train", corpus, "-o", f"{tmp_path / 'outd'}/", "--min-count", 1], capsys)
    assert code == 2 and "give a name, not a folder" in err
    assert os.listdir(tmp_path / "outd") == []


def test_eval_help_and_vectors_with_whitespace(vectors_model, capsys):
    code, out, _ = run(["eval", "--help"], capsys)
    assert code == 0 and "per query" not in out and "per evaluated file" in out
    code, out, err = run(["vectors", vectors_model, "a b"], capsys)
    assert code == 2 and out == "" and "holds whitespace" in err
    code, out, _ = run(["vectors", vectors_model, "a b", "--json"], capsys)
    row = json.loads(out)
    assert code == 0 and row["query"] == "a b" and len(row["vector"]) == 8


def test_word_mode_pieces_show_unknown_characters_as_ids_do(tmp_path, capsys):
    from embedkit.bpe.model import BPETokenizer

    tok = BPETokenizer.train(["aab ab ba"] * 10, 20, byte_level=False)
    (text,) = tok.subword_text(["abz b"])
    pieces = [tok.id_to_token(i) for i in tok.encode("abz b")]
    assert pieces[-2:] == ["<unk></w>", "b</w>"] and text.endswith("@@ <unk> b") and "z" not in text
    codes = BPETokenizer.from_codes("#version: 0.2\na b</w>\n")
    assert codes.subword_text(["zab"]) == ["z@@ ab"]  # subword-nmt's apply-bpe keeps them


# ---- 10. conventions users reach for --------------------------------------------------------

def test_every_threads_option_follows_one_rule():
    import importlib

    from embedkit.cli import COMMANDS
    from embedkit.cli.common import default_threads

    found = []
    for name, (module, attr, _) in COMMANDS.items():
        if name in ("classify", "probe"):
            continue  # added by other work; their own tests cover them
        cmd = getattr(importlib.import_module(module), attr)
        subs = cmd.commands.items() if hasattr(cmd, "commands") else [("", cmd)]
        for sub, c in subs:
            for p in c.params:
                if p.name == "threads":
                    assert callable(p.default) and p.default() == default_threads(), (name, sub)
                    found.append(f"{name} {sub}".strip())
    assert {"bpe learn", "bpe encode", "train", "demo", "encoder train", "encoder embed"} <= set(found)
    assert 1 <= default_threads() <= 8


def test_eval_reads_whitespace_separated_pairs_and_writes_strict_json(vectors_model, tmp_path,
                                                                       capsys):
    from embedkit.vectors.model import load

    words = load(vectors_model).words
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{words[0]} {words[1]}  3.5\n{words[2]}\t{words[3]}\t1\n{words[1]} {words[4]} 2\n")
    code, out, _ = run(["eval", vectors_model, "--similarity", pairs, "--json"], capsys)
    assert code == 0 and json.loads(out)["used"] == 3
    one = tmp_path / "one.txt"
    one.write_text(f"{words[0]} {words[1]} 3.5\n")
    code, out, _ = run(["eval", vectors_model, "--similarity", one, "--json"], capsys)

    def no_constants(c):
        raise ValueError(c)

    row = json.loads(out, parse_constant=no_constants)
    assert code == 0 and row["spearman"] is None and row["used"] == 1


def test_nn_restrict_answers_from_the_most_frequent_words(tmp_path, capsys):
    from embedkit.vectors.model import Vectors

    m = np.array([[1, 0], [0, 1], [1, 0.1], [1, 0.05]], np.float32)
    path = tmp_path / "r.ekv"
    Vectors.from_arrays(["a", "b", "c", "d"], m).save(path)
    code, out, _ = run(["nn", path, "a", "-k", 2], capsys)
    assert out.split("\n")[0].split("\t")[0] == "d"
    code, out, _ = run(["nn", path, "d", "-k", 1, "--restrict", 2], capsys)
    assert code == 0 and out.split("\t")[0] == "a"
    code, out, _ = run(["analogy", path, "b", "a", "c", "-k", 1, "--restrict", 2, "--json"], capsys)
    assert code == 0 and json.loads(out)["neighbours"] == []


def test_convert_says_when_subwords_are_dropped(vectors_model, tmp_path, capsys):
    code, _, err = run(["convert", vectors_model, tmp_path / "o.vec"], capsys)
    assert code == 0 and "subwords" in err and "dropped" in err and "native" in err
    code, _, err = run(["convert", vectors_model, tmp_path / "o.ekv"], capsys)
    assert code == 0 and err == ""
    code, _, err = run(["convert", vectors_model, tmp_path / "o2.vec", "--quiet"], capsys)
    assert code == 0 and err == ""


# ---- progress bars: no `nan` before the first figure ------------------------------------------

def test_progress_bar_shows_no_nan_before_the_first_loss(capsys, monkeypatch):
    import time

    from embedkit import train
    from embedkit.wordvec import kernels as K

    real = K.train_chunk

    def slow(*args):  # the bar is drawn several times before the first chunk's loss exists
        time.sleep(0.8)
        return real(*args)

    monkeypatch.setattr(K, "train_chunk", slow)
    train([" ".join(SENTENCES)] * 20, dim=4, min_count=1, epochs=1, threads=1, quiet=False)
    err = capsys.readouterr().err
    assert "loss=-" in err and "nan" not in err.lower()
    from embedkit.progress import figure

    assert figure(float("nan")) == "-" and figure(None) == "-" and figure(0.25, ".2f") == "0.25"
