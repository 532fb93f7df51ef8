"""Word-vector training: CBOW / skip-gram with negative sampling, char or BPE subwords.

(Named ``wordvec`` rather than ``train`` so that ``embedkit.train`` stays the training function.)
"""
