import numpy as np
import pytest

from embedkit.errors import InputError, OutputError
from embedkit.io import atomic_dir, atomic_write
from embedkit.store import read_store, write_store


def test_round_trip_memory_mapped(tmp_path):
    p = tmp_path / "m.ekv"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1, -2, 3], dtype=np.int64)
    write_store(p, "vectors", {"words": ["é", "b", "c"]}, {"a": a, "b": b, "empty": np.zeros((0, 4), np.float32)})
    meta, arrays = read_store(p, "vectors")
    assert meta == {"words": ["é", "b", "c"]}
    assert isinstance(arrays["a"], np.memmap) and arrays["a"].dtype == np.float32
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)
    assert arrays["empty"].shape == (0, 4)
    assert all(spec % 64 == 0 for spec in [arrays["a"].offset, arrays["b"].offset])
    _, loaded = read_store(p, mmap=False)
    assert not isinstance(loaded["a"], np.memmap)


def test_big_endian_input_is_stored_little_endian(tmp_path):
    p = tmp_path / "m"
    write_store(p, "k", {}, {"x": np.array([1.5, 2.5], dtype=">f4")})
    assert read_store(p)[1]["x"].dtype.str == "<f4"
    assert read_store(p)[1]["x"].tolist() == [1.5, 2.5]


def test_truncated_wrong_kind_and_foreign_files(tmp_path):
    p = tmp_path / "m"
    write_store(p, "vectors", {}, {"x": np.ones(1000, np.float32)})
    with pytest.raises(InputError, match="expected a 'encoder'"):
        read_store(p, "encoder")
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated"):
        read_store(p)
    q = tmp_path / "foreign"
    q.write_bytes(b"3 4\nhello")
    with pytest.raises(InputError, match="not an embedkit model file"):
        read_store(q)
    with pytest.raises(InputError, match="no such file"):
        read_store(tmp_path / "nope")


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(p, "w") as f:
            f.write("new half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["out.txt"]
    with atomic_write(p, "w") as f:
        f.write("new")
    assert p.read_text() == "new"
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "x") as f:
            pass


def test_atomic_dir_appears_whole_and_keeps_other_files(tmp_path):
    d = tmp_path / "tok"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(d, "m") as t:
            (t / "m").write_text("{}")
            raise KeyboardInterrupt
    assert not d.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(d, "m") as t:
        (t / "m").write_text("1")
        (t / "a").write_text("1")
    (d / "mine.txt").write_text("user's")
    with atomic_dir(d, "m") as t:
        (t / "m").write_text("2")
    assert {x.name: x.read_text() for x in d.iterdir()} == {"m": "2", "a": "1", "mine.txt": "user's"}
    assert len(list(tmp_path.iterdir())) == 1


def test_header_that_is_not_a_json_object_is_corrupt(tmp_path):
    import json
    import struct

    head = json.dumps([1, 2]).encode()
    (tmp_path / "x.ekv").write_bytes(struct.pack("<8sIIQ", b"EMBEDKIT", 1, 0, len(head)) + head)
    with pytest.raises(InputError, match="corrupt embedkit file header"):
        read_store(tmp_path / "x.ekv")
