"""``embedkit demo`` end to end on a small corpus (the built-in one is exercised by the benchmark)."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.cli import main
from embedkit.vectors.model import load


def test_demo_on_a_user_corpus_writes_model_and_prints_neighbours(tmp_path, capsys):
    rng = np.random.default_rng(0)
    vocab = ["file", "list", "error", "thread", "string", "socket", "read", "write", "open", "close",
             "lock", "data", "bytes", "text", "value", "items"]
    lines = [" ".join(rng.choice(vocab, 10)) for _ in range(400)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["demo", "--corpus", str(tmp_path / "c.txt"), "--out", str(tmp_path / "out"),
              "--threads", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    assert err == ""
    assert "file: " in out and "socket: " in out and "embedkit nn" in out
    model = load(tmp_path / "out" / "vectors.ekv")
    assert sorted(model.words) == sorted(vocab) and model.dim == 100
    assert (tmp_path / "out" / "tokenizer").is_dir()
    assert load(tmp_path / "out" / "vectors.vec").words == model.words


def test_demo_refuses_a_tiny_corpus(tmp_path, capsys):
    (tmp_path / "c.txt").write_text("just a few words here\n")
    with pytest.raises(SystemExit) as e:
        main(["demo", "--corpus", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o"), "--quiet"])
    assert e.value.code == 2 and "too small for a demo" in capsys.readouterr().err


@pytest.mark.parametrize("threads", ["0", "99999999"])
def test_demo_refuses_thread_counts_that_would_fork_bomb(tmp_path, capsys, threads):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "o"), "--threads", threads, "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(
        f"embedkit: error: Invalid value for '--threads': {threads} is not in the range 1<=x<=1024")
    assert not (tmp_path / "o").exists()
