import gzip

import pytest
import regex

from embedkit.corpus import decode, iter_blocks, iter_lines
from embedkit.errors import InputError

GPT2 = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def lines(paths, **kw):
    return [(l.lineno, l.text, l.end) for l in iter_lines(paths, **kw)]


def test_lines_crlf_bom_and_missing_final_newline(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n\nthree")
    assert lines([p]) == [(1, "one", True), (2, "two", True), (3, "", True), (4, "three", True)]
    assert [b.data for b in iter_blocks(p)] == [b"one\r\ntwo\n\n", b"three"]  # BOM dropped
    # keep_ends: every byte, for exact round trips (the BOM, the \r, no \n added at the end)
    assert lines([p], keep_ends=True) == [(1, "\ufeffone\r\n", True), (2, "two\n", True),
                                          (3, "\n", True), (4, "three", True)]
    p.write_bytes(b"abc\n\xef\xbb\xbfx\n")  # a BOM after the first line is content
    assert lines([p], block_bytes=4) == [(1, "abc", True), (2, "\ufeffx", True)]


def test_gzip_is_detected_by_content(tmp_path):
    p = tmp_path / "a.data"
    p.write_bytes(gzip.compress("héllo\nworld\n".encode()))
    assert [l[1] for l in lines([p])] == ["héllo", "world"]


def test_line_numbers_across_blocks(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("".join(f"line {i}\n" for i in range(1, 1001)))
    got = lines([p], block_bytes=97)
    assert got[-1] == (1000, "line 1000", True) and len(got) == 1000
    assert all(n == int(t.split()[1]) for n, t, _ in got)


def test_invalid_utf8_names_file_line_and_column(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"ok\nfine\nab\xffc\n")
    with pytest.raises(InputError) as e:
        lines([p])
    assert str(e.value) == f"{p}:3: invalid UTF-8 (byte 0xff at column 3)"


def test_surrogateescape_keeps_exact_bytes(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"ab\xffc\n")
    (text,) = [l.text for l in iter_lines([p], errors="surrogateescape")]
    assert text.encode("utf-8", "surrogateescape") == b"ab\xffc"


def test_nul_byte_is_refused_unless_allowed(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(b"a\nb\x00c\n")
    with pytest.raises(InputError, match=r":2: NUL byte"):
        lines([p])
    p.write_bytes(b"\na\nb\x00c\n")
    with pytest.raises(InputError, match=r":3: NUL byte"):
        lines([p])
    p.write_bytes(b"a\nb\x00c\n")
    assert lines([p], allow_nul=True)[1] == (2, "b\x00c", True)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        lines([tmp_path / "nope.txt"])
    with pytest.raises(InputError, match="is a folder"):
        lines([tmp_path])


def test_long_line_is_cut_into_pieces_that_pretokenize_identically(tmp_path):
    words = ["alpha", "  beta", "gamma's", "\t", "12345", "   ", "!!", "ünïcode", "x"]
    text = " ".join(words[i % len(words)] for i in range(5000)) + "\nnext\n"
    p = tmp_path / "long.txt"
    p.write_text(text)
    got = list(iter_lines([p], max_line=1000, block_bytes=512))
    pieces = [l for l in got if l.lineno == 1]
    assert len(pieces) > 20 and not any(l.end for l in pieces[:-1]) and pieces[-1].end
    assert all(len(l.text.encode()) <= 1000 for l in pieces)
    assert "".join(l.text for l in pieces) == text.split("\n")[0]
    whole = GPT2.findall(text.split("\n")[0])
    assert [t for l in pieces for t in GPT2.findall(l.text)] == whole
    assert (got[-1].lineno, got[-1].text) == (2, "next")
    # the cut is just before the last whitespace of a run; none in the back half: at max_line
    p.write_text("aaaa   bbbbbbbbbb\n" + "a" * 11 + " bcd\n")
    assert lines([p], max_line=10, block_bytes=4) == [
        (1, "aaaa  ", False), (1, " bbbbbbbbbb", True), (2, "a" * 10, False), (2, "a bcd", True)]


def test_line_without_whitespace_is_cut_at_character_boundaries(tmp_path):
    p = tmp_path / "cjk.txt"
    p.write_text("漢字" * 3000)
    pieces = list(iter_lines([p], max_line=1001))
    assert "".join(l.text for l in pieces) == "漢字" * 3000


def test_decode_reports_line_in_block():
    from embedkit.corpus import Block

    with pytest.raises(InputError, match=r"^f:11: invalid UTF-8"):
        decode(Block("f", 10, b"a\n\xc3(\n", True))
    with pytest.raises(InputError, match=r"^f:2: invalid UTF-8 \(byte 0xff at column 1\)$"):
        decode(Block("f", 1, b"\n\xff", True))


def test_blocks_keep_all_bytes(tmp_path):
    data = b"".join(b"x" * (i % 37) + b"\n" for i in range(3000))
    p = tmp_path / "a.txt"
    p.write_bytes(data)
    assert b"".join(b.data for b in iter_blocks(p, block_bytes=1000, max_line=500)) == data


def test_open_file_is_the_one_place_that_names_missing_files_and_folders(tmp_path):
    from embedkit.bpe.files import read_text
    from embedkit.corpus import open_file
    from embedkit.store import read_store
    from embedkit.vectors.formats.checks import read_bytes

    for read in (lambda p: open_file(p).__enter__(), read_text, read_store, read_bytes):
        with pytest.raises(InputError, match=r"nope\.txt: no such file$"):
            read(tmp_path / "nope.txt")
        with pytest.raises(InputError, match="is a folder, expected a"):
            read(tmp_path)
    with pytest.raises(InputError, match="is a folder, expected a vector file"):
        read_bytes(tmp_path)


def _blocks(p, **kw):
    return [(b.lineno, b.data, b.complete) for b in iter_blocks(p, **kw)]


def test_long_lines_are_cut_where_the_docs_say(tmp_path):
    """Before a whitespace that precedes a word, searched back to half of ``max_line`` (not
    further); else at ``max_line``, stepped back to a UTF-8 character start; each piece at most
    ``max_line`` bytes and at least one, even when every byte is a continuation byte."""
    p = tmp_path / "a.txt"
    p.write_bytes(b"aaaaa bbbbbbbbbbbbbbb")  # the space at max_line // 2 is found
    assert [d for _, d, _ in _blocks(p, max_line=10)] == [b"aaaaa", b" bbbbbbbbb", b"bbbbbb"]
    p.write_bytes(b"aaaa bbbbbbbbbbbbbbbbbbbbbbbb")  # a space before max_line // 2 is too far back
    assert _blocks(p, max_line=12)[0] == (1, b"aaaa bbbbbbb", False)
    p.write_bytes("é".encode() * 60)  # 2-byte characters, an odd limit: cut before 'é', not inside
    pieces = [d for _, d, _ in _blocks(p, max_line=101)]
    assert [len(d) for d in pieces] == [100, 20] and all(d.decode() for d in pieces)
    p.write_bytes(b"\xa9" * 25)  # no character start at all (invalid UTF-8, found later)
    assert [d for _, d, _ in _blocks(p, max_line=10)] == [b"\xa9"] * 15 + [b"\xa9" * 10]
    p.write_bytes(b"a b")
    assert [d for _, d, _ in _blocks(p, max_line=1)] == [b"a", b" ", b"b"]


def test_a_line_is_cut_at_one_mib_by_default(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"x" * (5 << 19))  # 2.5 MiB, no whitespace, no newline
    assert [(len(d), c) for _, d, c in _blocks(p)] == [(1 << 20, False), (1 << 20, False),
                                                        (1 << 19, True)]


def test_a_block_that_starts_with_its_only_newline(tmp_path):
    """The newline at offset 0 of a read ends line 1 there; the rest is line 2."""
    p = tmp_path / "a.txt"
    p.write_bytes(b"\nabc")
    assert _blocks(p, block_bytes=4) == [(1, b"\n", True), (2, b"abc", True)]
    assert lines([p], block_bytes=4) == [(1, "", True), (2, "abc", True)]


def test_a_nul_as_the_first_byte_is_refused(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"\0abc\n")
    with pytest.raises(InputError, match=r":1: NUL byte"):
        list(iter_lines([p]))


def test_a_read_error_names_the_file_line_and_strerror(tmp_path, monkeypatch):
    import contextlib

    import embedkit.corpus as C

    class Failing:
        def __init__(self):
            self.reads = 0

        def read(self, n):
            self.reads += 1
            if self.reads > 1:
                raise OSError(5, "Input/output error")
            return b"one\ntwo\n"

    @contextlib.contextmanager
    def failing_input(name):
        yield Failing()

    monkeypatch.setattr(C, "open_input", failing_input)
    with pytest.raises(InputError) as e:
        list(iter_blocks(tmp_path / "disk.txt"))
    assert str(e.value).endswith("disk.txt:3: cannot read: Input/output error")
