"""embedkit's native container: one file, a JSON header and raw little-endian arrays.

Why not ``.npz`` or pickle: arrays must be memory-mapped (a 100k x 300 model opens in
milliseconds and pages in only what a query touches) and loading must never execute code.

Layout::

    8 bytes   magic b"EMBEDKIT"
    uint32    format version (1)
    uint32    0 (reserved)
    uint64    header length H
    H bytes   UTF-8 JSON: {"kind": str, "meta": {...},
                           "arrays": {name: {"dtype": "<f4", "shape": [...], "offset": int}}}
    ...       each array's raw C-order bytes at its offset (64-byte aligned, from file start)
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np

from .corpus import open_file
from .errors import InputError
from .io import atomic_write

MAGIC = b"EMBEDKIT"
VERSION = 1
_PREFIX = struct.Struct("<8sIIQ")
_ALIGN = 64
_DTYPES = {"<f4", "<f8", "<i4", "<i8", "<u4", "<u8", "|u1", "|i1", "<f2"}


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def is_store(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == MAGIC
    except OSError:
        return False


def write_store(path: str | os.PathLike, kind: str, meta: dict[str, Any],
                arrays: dict[str, np.ndarray]) -> None:
    """Write atomically; arrays are stored little-endian, C-contiguous."""
    prepared = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        if a.dtype.str not in _DTYPES:
            raise TypeError(f"array {name!r}: dtype {a.dtype} not storable")
        prepared[name] = a
    # Offsets depend on the header length, which depends on the offsets: two passes settle it.
    head_len = 0
    for _ in range(3):
        offset = _align(_PREFIX.size + head_len)
        table = {}
        for name, a in prepared.items():
            table[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
            offset = _align(offset + a.nbytes)
        header = _dump_header({"kind": kind, "meta": meta, "arrays": table})
        if len(header) == head_len:
            break
        head_len = len(header)
    header = header.ljust(head_len, b" ")
    with atomic_write(path, "wb") as f:
        f.write(_PREFIX.pack(MAGIC, VERSION, 0, len(header)))
        f.write(header)
        for name, a in prepared.items():
            f.seek(table[name]["offset"])
            f.write(a.tobytes() if a.nbytes < (1 << 20) else memoryview(a.reshape(-1)).cast("B"))
        f.truncate(max([_PREFIX.size + len(header)] +
                       [t["offset"] + prepared[n].nbytes for n, t in table.items()]))


def _dump_header(header: dict) -> bytes:
    """Compact UTF-8 JSON; words kept byte-exact from invalid UTF-8 (lone surrogates, see
    ``vectors.formats.checks.WordPolicy``) cannot be UTF-8, so such a header is ASCII JSON,
    whose ``\\udcxx`` escapes read back to the same words."""
    try:
        return json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(header, separators=(",", ":")).encode("ascii")


def _read_header(name: str) -> tuple[dict[str, Any], int, int]:
    """``(header, file size, offset of the first array byte)``, the header checked to be a JSON object."""
    with open_file(name) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
                raise InputError(name, "not an embedkit model file")
            _, version, _, head_len = _PREFIX.unpack(prefix)
            if version != VERSION:
                raise InputError(name, f"embedkit file format version {version} is not supported "
                                       f"(this embedkit reads version {VERSION})")
            if _PREFIX.size + head_len > size:
                raise InputError(name, "truncated embedkit file (header runs past the end)")
            header = json.loads(f.read(head_len).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise InputError(name, "corrupt embedkit file header (not UTF-8 JSON)") from None
        except OSError as e:
            raise InputError(name, f"cannot read: {e.strerror}") from None
    if not isinstance(header, dict):
        raise InputError(name, "corrupt embedkit file header: not a JSON object")
    return header, size, _PREFIX.size + head_len


def store_kind(path: str | os.PathLike) -> str | None:
    """The ``kind`` an embedkit store declares, or None for a file that is not a store; a store
    whose header is corrupt is an InputError. What the sniffers that route files by kind use."""
    if not is_store(path):
        return None
    return str(_read_header(os.fspath(path))[0].get("kind"))


def read_store(path: str | os.PathLike, kind: str | None = None, mmap: bool = True
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(meta, arrays)``; arrays are read-only memory maps unless ``mmap`` is False.

    Every field of the header is checked before an array is mapped: a file whose header lies
    (a negative or overlapping offset, a shape past the end, an unknown dtype) is one
    ``InputError`` naming the file and the field, never a NumPy exception.
    """
    name = os.fspath(path)
    header, size, data_start = _read_header(name)
    if kind is not None and header.get("kind") != kind:
        raise InputError(name, f"holds a {header.get('kind')!r}, expected a {kind!r}")
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError(name, "corrupt embedkit file: field 'meta' is not an object")
    specs = header.get("arrays", {})
    if not isinstance(specs, dict):
        raise InputError(name, "corrupt embedkit file: field 'arrays' is not an object")
    table = {key: _array_spec(name, key, spec, data_start, size)
             for key, spec in specs.items()}
    spans = sorted((off, off + nbytes, key) for key, (_, _, off, nbytes) in table.items() if nbytes)
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise InputError(name, f"corrupt embedkit file: arrays {a!r} and {b!r} overlap")
    arrays = {}
    for key, (dtype, shape, offset, nbytes) in table.items():
        if nbytes == 0:
            arrays[key] = np.zeros(shape, dtype)
        elif mmap:
            arrays[key] = np.memmap(name, dtype=dtype, mode="r", offset=offset, shape=shape)
        else:
            arrays[key] = np.fromfile(name, dtype=dtype, count=nbytes // dtype.itemsize,
                                      offset=offset).reshape(shape)
    return meta, arrays


def _array_spec(name: str, key: str, spec, data_start: int, size: int):
    """``(dtype, shape, offset, nbytes)`` of one entry of the array table, or a one-line error."""
    def bad(field: str, problem: str) -> InputError:
        return InputError(name, f"corrupt embedkit file: array {key!r}: {field} {problem}")

    if not isinstance(spec, dict):
        raise bad("entry", "is not an object")
    dtype, shape, offset = spec.get("dtype"), spec.get("shape"), spec.get("offset")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise bad("dtype", f"{dtype!r} is not one of {', '.join(sorted(_DTYPES))}")
    if not isinstance(shape, list) or len(shape) > 8 or \
            not all(type(n) is int and n >= 0 for n in shape):
        raise bad("shape", f"{shape!r} is not a list of sizes >= 0")
    if type(offset) is not int or offset < data_start:
        raise bad("offset", f"{offset!r} is not a position past the header")
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize  # Python ints: a lying shape cannot overflow
    if offset + nbytes > size:
        raise InputError(name, f"truncated: array {key!r} runs past the end of the file")
    return dt, tuple(shape), offset, nbytes
