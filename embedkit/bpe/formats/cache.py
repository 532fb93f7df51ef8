"""A cache of parsed tokenizer files, keyed by the file's sha256, so a 200k vocabulary loads in
milliseconds the second time. It lives in ``$EMBEDKIT_CACHE_DIR`` (default
``$XDG_CACHE_HOME/embedkit`` or ``~/.cache/embedkit``), never beside the user's files; entries
are written atomically (an embedkit store), and any problem just means no cache
(``EMBEDKIT_CACHE_DIR=`` empty turns it off)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from . import Parts

VERSION = 1  # bump when a reader gives different Parts for the same file


def directory() -> Path | None:
    d = os.environ.get("EMBEDKIT_CACHE_DIR")
    if d is not None:
        return Path(d) if d else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "embedkit"


def key(data: bytes, *extra: str) -> str:
    h = hashlib.sha256(data)
    for e in extra:
        h.update(b"\0" + e.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def get(k: str) -> Parts | None:
    d = directory()
    if d is None or not (d / f"{k}.ekt").is_file():
        return None
    import numpy as np

    from ...errors import EmbedkitError
    from ...store import read_store

    try:
        meta, arrays = read_store(d / f"{k}.ekt", "tokenizer-cache", mmap=False)
        if meta.get("version") != VERSION:
            return None
        blob = arrays["tokens"].tobytes().decode("utf-8", "surrogatepass")
        tokens = blob.split("\0") if blob else []
        m = np.asarray(arrays["merges"]).reshape(-1, 2)
        return Parts(tokens, list(zip(m[:, 0].tolist(), m[:, 1].tolist())), meta["settings"])
    except (EmbedkitError, KeyError, ValueError, OSError, UnicodeDecodeError):
        return None


def put(k: str, parts: Parts) -> None:
    d = directory()
    if d is None or any("\0" in t for t in parts.tokens):
        return
    import numpy as np

    from ...errors import EmbedkitError
    from ...store import write_store

    try:
        d.mkdir(parents=True, exist_ok=True)
        blob = "\0".join(parts.tokens).encode("utf-8", "surrogatepass")
        write_store(d / f"{k}.ekt", "tokenizer-cache", {"version": VERSION, "settings": parts.settings},
                    {"tokens": np.frombuffer(blob or b"", np.uint8),
                     "merges": np.array(parts.merges, np.int32).reshape(-1, 2)})
    except (EmbedkitError, OSError, TypeError, ValueError):
        pass
