"""`--subwords bpe`: a word's rows are its BPE pieces (encoded with GPT-2's leading space)."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.subwords import scheme_from_meta
from embedkit.wordvec.args import TrainOptions
from embedkit.wordvec.bpe_subwords import BpePieces
from embedkit.wordvec.trainer import as_vectors, fit, subword_table
from embedkit.vectors.formats.native import load_native

LINES = ["the cat sat on the mat", "the dog ate the cat food", "cats and dogs eat food"] * 60


@pytest.fixture
def tokdir(tmp_path):
    from embedkit.bpe.model import BPETokenizer

    BPETokenizer.train(LINES, 300).save(tmp_path / "tok")
    return tmp_path / "tok"


def test_pieces_are_the_word_encoded_mid_text(tokdir):
    scheme = BpePieces.load(tokdir)
    tok = scheme.tokenizer
    assert scheme.kind == "bpe" and scheme.size == tok.vocab_size and scheme.leading_space
    assert scheme.rows("cat").tolist() == tok.encode(" cat")
    ptr, ids, _, nsub = subword_table(scheme, ["cat", "dogs"])
    assert nsub == tok.vocab_size
    assert ids[ptr[0]:ptr[1]].tolist() == [0] + [2 + i for i in tok.encode(" cat")]
    assert ids[ptr[1]:ptr[2]].tolist() == [1] + [2 + i for i in tok.encode(" dogs")]


def test_meta_embeds_the_tokenizer(tokdir):
    scheme = BpePieces.load(tokdir)
    again = scheme_from_meta(scheme.to_meta())
    assert isinstance(again, BpePieces)
    for w in ["cat", "catfood", "zebra", "é"]:
        assert again.rows(w).tolist() == scheme.rows(w).tolist()


def test_train_with_bpe_subwords_gives_oov_vectors(tokdir, tmp_path):
    m = fit(LINES, TrainOptions(dim=8, epochs=2, min_count=1, subwords="bpe", tokenizer=str(tokdir)))
    scheme = m.scheme
    assert m.subword_rows.shape == (scheme.size, 8)
    rows = np.vstack([m.input[0], m.subword_rows[scheme.rows(m.words[0])]])
    np.testing.assert_allclose(m.vectors[0], rows.mean(0), rtol=1e-5, atol=1e-7)
    v = as_vectors(m)
    v.save_native(tmp_path / "m.ekv")
    meta, arrays = load_native(tmp_path / "m.ekv")
    assert meta["subwords"]["kind"] == "bpe" and "vocab.json" in meta["subwords"]["files"]
    oov = scheme_from_meta(meta["subwords"]).rows("catdog")
    assert len(oov) and np.isfinite(arrays["subword_rows"][oov].mean(0)).all()
    assert "catdog" not in v
    pieces = scheme.rows("catdog").tolist()
    assert oov.tolist() == pieces and len(pieces) > 1  # the stored scheme gives the same rows
    np.testing.assert_allclose(v["catdog"], m.subword_rows[pieces].astype(np.float64).mean(0),
                               rtol=1e-5, atol=1e-7)


def test_cli_bad_tokenizer_folder(tmp_path, capsys):
    from embedkit.cli import main

    (tmp_path / "c.txt").write_text("a b\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m"), "--subwords", "bpe",
              "--tokenizer", str(tmp_path / "empty"), "--min-count", "1", "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "vocab.json" in err and "Traceback" not in err, err
    assert not (tmp_path / "m.vec").exists()
