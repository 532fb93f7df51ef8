"""A small transformer encoder in NumPy: layers with hand-written backward passes, Numba
kernels, MLM/CLM pretraining over BPE pieces, and the ``Encoder`` API (see model.py)."""
