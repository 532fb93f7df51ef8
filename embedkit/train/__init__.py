"""Word-vector training (CBOW / skip-gram with negative sampling, char or BPE subwords).

``from embedkit import train`` must give the training *function*, but once this subpackage is
imported Python binds ``embedkit.train`` to the package itself. So the package is made callable:
``embedkit.train(...)`` is ``embedkit.train.trainer.train(...)`` whichever of the two you hold.
"""
from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .trainer import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
