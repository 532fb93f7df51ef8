"""``embedkit bpe learn/encode/decode`` from the shell: round trips, interop and bad input."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

LINES = ["The cat sat on the mat.", "  two  spaces and a tab\there ", "", "naïve café 東京 🎉",
         "the cat and the hat", "It's the cat's hat, isn't it?"] * 20


def run(*args, input=None):
    code = "from embedkit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], input=input,
                          capture_output=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    path = d / "corpus.txt"
    path.write_bytes(("\n".join(LINES) + "\n").encode())
    return path


@pytest.fixture(scope="module")
def tokdir(corpus):
    out = corpus.parent / "tok"
    r = run("bpe", "learn", corpus, "-o", out, "--vocab-size", 300, "--quiet", "--threads", 2)
    assert r.returncode == 0, r.stderr
    assert b"vocabulary of 300 tokens (44 merges)" in r.stdout
    return out


@pytest.mark.parametrize("tail", [b"last line no newline", b"last line\n", b"\r\n\r\n", b""])
def test_encode_decode_round_trip_exact_bytes(tokdir, tmp_path, tail):
    """CRLF, a lone CR, a BOM, invalid UTF-8 and a missing final newline all come back exactly."""
    raw = (b"\xef\xbb\xbf" + "\n".join(LINES).encode() + b"\nbad \xff\xfe utf-8 \xc3\n"
           b"windows line\r\nold mac\rline\r\n\n" + tail)
    src = tmp_path / "in.txt"
    src.write_bytes(raw)
    ids = run("bpe", "encode", "-t", tokdir, "--ids", src)
    assert ids.returncode == 0, ids.stderr
    assert len(ids.stdout.split(b"\n")) == len(raw.split(b"\n"))  # one ids line per line
    assert ids.stdout.endswith(b"\n") == raw.endswith(b"\n")
    back = run("bpe", "decode", "-t", tokdir, input=ids.stdout)
    assert back.returncode == 0, back.stderr
    assert back.stdout == raw


def test_windows_line_endings_are_content_in_pieces(tokdir, tmp_path):
    src = tmp_path / "win.txt"
    src.write_bytes(b"Hello world\r\nSecond line\r\n")
    r = run("bpe", "encode", "-t", tokdir, src)
    lines = r.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 3 and all(x.endswith(" \u010d") for x in lines[:2])


def test_encode_pieces_and_stdin(tokdir):
    r = run("bpe", "encode", "-t", tokdir, input="the cat\n\nhat".encode())
    assert r.returncode == 0
    assert r.stdout.decode().split("\n") == ["the Ġcat", "", "hat"]  # no final newline: none added


def test_cli_ids_equal_hf(tokdir, corpus):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    hf = tokenizers.ByteLevelBPETokenizer(str(tokdir / "vocab.json"), str(tokdir / "merges.txt"))
    r = run("bpe", "encode", "-t", tokdir, "--ids", corpus)
    ours = [[int(i) for i in line.split()] for line in r.stdout.decode().splitlines()]
    assert ours == [e.ids for e in hf.encode_batch(LINES)]


def test_gzip_and_several_inputs_and_word_mode_codes(corpus, tmp_path):
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(corpus.read_bytes()))
    codes = tmp_path / "codes"
    r = run("bpe", "learn", gz, "-", "-o", codes, "--vocab-size", 120, "--no-byte-level",
            "--format", "subword-nmt", "--quiet", input=b"more text here\n")
    assert r.returncode == 0, r.stderr
    assert codes.read_text().startswith("#version: 0.2\n")
    r = run("bpe", "encode", "-t", codes, input=b"the cat sat zzz\n")
    assert r.returncode == 0 and r.stdout == b"the cat sat z@@ z@@ z\n"


def test_special_tokens_and_settings_file(corpus, tmp_path):
    out = tmp_path / "tok"
    r = run("bpe", "learn", corpus, "-o", out, "--vocab-size", 300, "--special-token", "<pad>",
            "--special-token", "<eos>", "--lowercase", "--quiet")
    assert r.returncode == 0, r.stderr
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["<pad>"] == 0 and vocab["<eos>"] == 1
    settings = json.loads((out / "embedkit.json").read_text())
    assert settings["lowercase"] and settings["mode"] == "byte-level"
    r = run("bpe", "encode", "-t", out, "--ids", input=b"THE<eos>\nthe<eos>\n")
    upper, lower = r.stdout.splitlines()
    assert upper == lower and upper.split()[-1] == b"1"  # lowercased, the special kept whole


@pytest.mark.parametrize("args, message", [
    (["learn", "missing.txt", "-o", "{tmp}/t", "--vocab-size", "300"], "missing.txt: no such file"),
    (["learn", "{tmp}", "-o", "{tmp}/t", "--vocab-size", "300"], "is a folder, expected a file"),
    (["learn", "{tmp}/empty.txt", "-o", "{tmp}/t", "--vocab-size", "300"], "empty corpus"),
    (["learn", "{tmp}/nul.txt", "-o", "{tmp}/t", "--vocab-size", "300"], "nul.txt:2: NUL byte"),
    (["learn", "{tmp}/bad.txt", "-o", "{tmp}/t", "--vocab-size", "300", "--no-byte-level"],
     "bad.txt:2: invalid UTF-8"),
    (["learn", "{tmp}/ok.txt", "-o", "{tmp}/t", "--vocab-size", "100"], "smaller than the base alphabet"),
    (["learn", "{tmp}/ok.txt", "-o", "{tmp}/t", "--vocab-size", "lots"], "'lots' is not a valid integer"),
    (["learn", "{tmp}/ok.txt", "-o", "{tmp}/ok.txt", "--vocab-size", "300"], "exists and is not a folder"),
    (["learn", "{tmp}/ok.txt", "-o", "{tmp}/no/t", "--vocab-size", "300"], "does not exist"),
    (["learn", "{tmp}/ok.txt", "-o", "{tmp}/t", "--vocab-size", "300", "--threads", "5000"],
     "'--threads': 5000 is not in the range 1<=x<=1024"),
    (["encode", "-t", "TOKDIR", "--threads", "99999999999", "{tmp}/ok.txt"], "is not in the range"),
    (["encode", "-t", "{tmp}/nothing", "{tmp}/ok.txt"], "no such tokenizer folder"),
    (["encode", "-t", "{tmp}/ok.txt", "{tmp}/ok.txt"], "no '#version: 0.2' header"),
    (["decode", "-t", "TOKDIR", "{tmp}/ok.txt"], "ok.txt:1: not a token id: 'hello'"),
    (["decode", "-t", "TOKDIR", "{tmp}/ids.txt"], "ids.txt:2: id 99999 is not in the vocabulary"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tokdir, tmp_path, args, message):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "nul.txt").write_bytes(b"fine\nbin\x00ary\n")
    (tmp_path / "bad.txt").write_bytes(b"fine\nbad \xff\n")
    (tmp_path / "ok.txt").write_bytes(b"hello world\n")
    (tmp_path / "ids.txt").write_bytes(b"1 2\n3 99999\n")
    args = [a.replace("{tmp}", str(tmp_path)).replace("TOKDIR", str(tokdir)) for a in args]
    r = run("bpe", *args)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert message in err and "Traceback" not in err
    # one line (a progress bar may come first, erased with \r)
    assert err.split("\r")[-1].startswith("embedkit: error: ") and err.count("\n") == 1, err
    if args[0] == "learn":
        assert not (tmp_path / "t").exists()
        assert not any(p.name.startswith(".t.") for p in tmp_path.iterdir())


def test_corrupt_tokdir(tokdir, tmp_path):
    import shutil

    bad = tmp_path / "tok"
    shutil.copytree(tokdir, bad)
    (bad / "merges.txt").write_text("#version: 0.2\nĠ t\nnot-a-symbol x\n", encoding="utf-8")
    r = run("bpe", "encode", "-t", bad, input=b"x\n")
    assert r.returncode == 2 and b"merges.txt:3: unknown symbol 'not-a-symbol'" in r.stderr


def test_bpe_help_does_not_import_numba():
    code = ("import sys\nfrom embedkit.cli import main\nsys.argv=['embedkit','bpe','learn','--help']\n"
            "try:\n    main()\n    c = None\nexcept SystemExit as e:\n    c = e.code\n"
            "print(c, 'numba' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stderr.strip() == "0 False False", r.stderr
    assert r.stdout.startswith("Usage: embedkit bpe learn ") and "--vocab-size" in r.stdout
