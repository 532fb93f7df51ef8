"""Training kernels against plain-NumPy/Python references: hashes, n-gram tables, gradients, sampling."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.subwords import CharNgrams, char_ngram_rows, char_ngrams, fnv1a32
from embedkit.wordvec import kernels as K
from embedkit.wordvec.trainer import subword_table
from embedkit.wordvec.vocab import keep_thresholds, negative_table

WORDS = ["a", "cat", "été", "日本語", "naïve", "x" * 20, "ab\u0301c", "🙂ok", "</s>"]


def test_fnv1a_known_values():
    # Standard FNV-1a 32-bit test vectors (ASCII, where sign extension does not matter).
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    # fastText's signed-char quirk: 0xC3 is xor-ed as 0xFFFFFFC3.
    h = (0x811C9DC5 ^ 0xFFFFFFC3) * 16777619 % 2**32
    h = (h ^ 0xFFFFFFA9) * 16777619 % 2**32
    assert fnv1a32("é".encode()) == h


def test_fnv1a_matches_gensim_ft_hash_bytes():
    ft = pytest.importorskip("gensim.models.fasttext", reason="gensim not installed: no parity check")
    for w in ["<cat>", "été", "日本語", "🙂", "naïve", ""]:
        assert fnv1a32(w.encode()) == ft.ft_hash_bytes(w.encode())


@pytest.mark.parametrize("minn,maxn,buckets", [(3, 6, 2_000_000), (1, 3, 97), (2, 2, 10), (5, 9, 1)])
def test_ngram_kernel_equals_reference(minn, maxn, buckets):
    ptr, ids, _, nsub = subword_table(CharNgrams(minn, maxn, buckets), WORDS)
    nw = len(WORDS)
    assert nsub == buckets and ptr[0] == 0 and ptr[-1] == len(ids)
    for w, word in enumerate(WORDS):
        bag = ids[ptr[w]:ptr[w + 1]]
        assert bag[0] == w
        expect = nw + char_ngram_rows(word, minn, maxn, buckets)
        np.testing.assert_array_equal(bag[1:], expect, err_msg=word)


def test_ngram_kernel_cat_exact():
    ptr, ids, _, _ = subword_table(CharNgrams(3, 4, 1000), ["cat"])
    grams = [b"<ca", b"<cat", b"cat", b"cat>", b"at>"]
    assert char_ngrams("cat", 3, 4) == grams
    assert ids.tolist() == [0] + [1 + fnv1a32(g) % 1000 for g in grams]


def _ref_loss_grad(h, wout, target, negs):
    """Negative-sampling loss for hidden h: -log σ(h·o_t) - Σ log σ(-h·o_n), with its gradients."""
    sig = lambda z: 1 / (1 + np.exp(-z))
    loss = -np.log(sig(h @ wout[target]))
    gh = -(1 - sig(h @ wout[target])) * wout[target]
    gout = np.zeros_like(wout)
    gout[target] -= (1 - sig(h @ wout[target])) * h
    for n in negs:
        s = sig(h @ wout[n])
        loss -= np.log(1 - s)
        gh = gh + s * wout[n]
        gout[n] += s * h
    return loss, gh, gout


def _cbow_loss(win, wout, context, target, negs):
    return _ref_loss_grad(win[context].mean(0), wout, target, negs)[0]


def test_cbow_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    win, wout = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    context, target, negs = [1, 3, 4], 0, [2, 4]
    _, gh, gout = _ref_loss_grad(win[context].mean(0), wout, target, negs)
    eps = 1e-6
    for r in range(5):
        for d in range(4):
            for mat, analytic in ((wout, gout[r, d]), (win, gh[d] / len(context) if r in context else 0.0)):
                old = mat[r, d]
                mat[r, d] = old + eps
                up = _cbow_loss(win, wout, context, target, negs)
                mat[r, d] = old - eps
                down = _cbow_loss(win, wout, context, target, negs)
                mat[r, d] = old
                assert (up - down) / (2 * eps) == pytest.approx(analytic, abs=1e-6)


def _one_word_table(word, vocab):
    p = np.zeros(vocab)
    p[word] = 1.0
    return K.alias_table(p)


def test_cbow_kernel_step_equals_reference_gradient():
    """Sentence [0, 1], window 1, no subsampling, the only negative is word 2: two exact SGD steps."""
    rng = np.random.default_rng(1)
    win = rng.normal(scale=0.5, size=(3, 8)).astype(np.float32)
    wout = rng.normal(scale=0.5, size=(3, 8)).astype(np.float32)
    ref_in, ref_out = win.astype(np.float64), wout.astype(np.float64)
    lr = 0.1
    for pos, ctx in ((0, 1), (1, 0)):
        _, gh, gout = _ref_loss_grad(ref_in[ctx], ref_out, pos, [2])
        ref_out -= lr * gout
        ref_in[ctx] -= lr * gh  # mean of one row; the kernel applies the unscaled gradient
    tokens = np.array([0, 1, -1], np.int32)
    status = _run_kernel(tokens, win, wout, lr, skipgram=False, window=1)
    assert status == K.OK
    np.testing.assert_allclose(wout, ref_out, atol=2e-3 * lr)
    np.testing.assert_allclose(win, ref_in, atol=2e-3 * lr)


def test_skipgram_kernel_step_equals_reference_gradient():
    rng = np.random.default_rng(2)
    win = rng.normal(scale=0.5, size=(3, 8)).astype(np.float32)
    wout = rng.normal(scale=0.5, size=(3, 8)).astype(np.float32)
    ref_in, ref_out = win.astype(np.float64), wout.astype(np.float64)
    lr = 0.1
    for center, ctx in ((0, 1), (1, 0)):  # the center word's row predicts its context word
        _, gh, gout = _ref_loss_grad(ref_in[center], ref_out, ctx, [2])
        ref_out -= lr * gout
        ref_in[center] -= lr * gh
    status = _run_kernel(np.array([0, 1, -1], np.int32), win, wout, lr, skipgram=True, window=1)
    assert status == K.OK
    np.testing.assert_allclose(wout, ref_out, atol=2e-3 * lr)
    np.testing.assert_allclose(win, ref_in, atol=2e-3 * lr)


def test_skipgram_subword_kernel_updates_the_bag_per_pair_like_fasttext():
    """fastText re-reads the centre's bag mean for every context word; the middle word of
    [0, 1, 2] has two, so the second pair must see the first pair's update."""
    rng = np.random.default_rng(3)
    ptr = np.array([0, 3, 6, 8, 9], np.int64)
    sub = np.array([0, 4, 5, 1, 5, 6, 2, 4, 3], np.int32)
    win = rng.normal(scale=0.5, size=(7, 8)).astype(np.float32)
    wout = rng.normal(scale=0.5, size=(4, 8)).astype(np.float32)
    ref_in, ref_out = win.astype(np.float64), wout.astype(np.float64)
    lr = 0.2
    for center, ctx in ((0, 1), (1, 0), (1, 2), (2, 1)):
        bag = sub[ptr[center]:ptr[center + 1]]
        _, gh, gout = _ref_loss_grad(ref_in[bag].mean(0), ref_out, ctx, [3])
        ref_out -= lr * gout
        ref_in[bag] -= lr * gh  # every bag row gets the unscaled gradient
    status = _run_kernel(np.array([0, 1, 2, -1], np.int32), win, wout, lr, skipgram=True,
                         window=1, ptr=ptr, sub=sub)
    assert status == K.OK
    np.testing.assert_allclose(wout, ref_out, atol=2e-3 * lr)
    np.testing.assert_allclose(win, ref_in, atol=2e-3 * lr)


def _run_kernel(tokens, win, wout, lr, skipgram, window, ptr=None, sub=None, wts=K.UNWEIGHTED,
                hot=K.NO_HOT, first=0):
    nw = wout.shape[0]
    if ptr is None:
        ptr, sub = np.arange(nw + 1, dtype=np.int64), np.arange(nw, dtype=np.int32)
    sig, logsig = K.sigmoid_tables()
    return K.train_chunk(tokens, np.arange(nw, dtype=np.int32), np.full(nw, 1 << 32, np.int64), ptr,
                         sub, wts, hot, first, win, wout, _one_word_table(nw - 1, nw), sig, logsig,
                         skipgram, window, 1, lr, 1e15, np.zeros(1, np.int64), 0,
                         np.array([K.seed_state(0, 1)], np.uint64), np.zeros((1, 2)),
                         np.zeros(1, np.int32))


BAG_PTR = np.array([0, 3, 6, 8, 9], np.int64)
BAG_SUB = np.array([0, 4, 5, 1, 5, 6, 2, 4, 3], np.int32)


def test_skipgram_weighted_bag_weighs_the_mean_and_each_rows_update():
    """--bpe-bag weighted: the centre is the weighted mean of its bag; the window's summed
    gradient moves each row by its weight times it (the mean itself advances by each pair's
    gradient in place, as for unweighted bags)."""
    rng = np.random.default_rng(5)
    wts = rng.uniform(0.3, 2.0, len(BAG_SUB)).astype(np.float32)
    win = rng.normal(scale=0.5, size=(7, 8)).astype(np.float32)
    wout = rng.normal(scale=0.5, size=(4, 8)).astype(np.float32)
    ref_in, ref_out = win.astype(np.float64), wout.astype(np.float64)
    lr = 0.2
    for center, ctxs in ((0, [1]), (1, [0, 2]), (2, [1])):
        k = slice(BAG_PTR[center], BAG_PTR[center + 1])
        bag, w = BAG_SUB[k], wts[k].astype(np.float64)
        h = (w[:, None] * ref_in[bag]).sum(0) / w.sum()
        total = np.zeros(8)
        for ctx in ctxs:
            _, gh, gout = _ref_loss_grad(h, ref_out, ctx, [3])
            ref_out -= lr * gout
            h -= lr * gh
            total -= lr * gh
        ref_in[bag] += w[:, None] * total
    status = _run_kernel(np.array([0, 1, 2, -1], np.int32), win, wout, lr, skipgram=True,
                         window=1, ptr=BAG_PTR, sub=BAG_SUB, wts=wts)
    assert status == K.OK
    np.testing.assert_allclose(wout, ref_out, atol=2e-3 * lr)
    np.testing.assert_allclose(win, ref_in, atol=2e-3 * lr)
    out = np.empty((4, 8), np.float32)
    K.bag_means(win, BAG_PTR, BAG_SUB, wts, out)
    for word in range(4):
        k = slice(BAG_PTR[word], BAG_PTR[word + 1])
        np.testing.assert_allclose(out[word], np.average(win[BAG_SUB[k]], axis=0, weights=wts[k]),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("skipgram", [True, False])
def test_weights_of_one_are_the_unweighted_kernel_bit_for_bit(skipgram):
    rng = np.random.default_rng(6)
    tokens = rng.integers(0, 4, 60).astype(np.int32)
    tokens[::7] = -1
    win0 = rng.normal(scale=0.5, size=(7, 8)).astype(np.float32)
    runs = []
    for wts in (K.UNWEIGHTED, np.ones(len(BAG_SUB), np.float32)):
        win, wout = win0.copy(), np.full((4, 8), 0.05, np.float32)
        assert _run_kernel(tokens, win, wout, 0.1, skipgram, 2, BAG_PTR, BAG_SUB, wts) == K.OK
        out = np.empty((4, 8), np.float32)
        K.bag_means(win, BAG_PTR, BAG_SUB, wts, out)
        runs.append((win, wout, out))
    assert not np.array_equal(runs[0][0], win0)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("skipgram", [True, False])
def test_a_weight_of_two_is_two_copies_of_the_row(skipgram):
    """Own weight 3 (``--bpe-bag all``) repeats the row; a weight does the same in one entry."""
    ptr2 = np.array([0, 4, 7, 9, 10], np.int64)  # word 0's own row twice
    sub2 = np.array([0, 0, 4, 5, 1, 5, 6, 2, 4, 3], np.int32)
    wts = np.ones(len(BAG_SUB), np.float32)
    wts[0] = 2.0
    tokens = np.array([0, 1, 2, 0, 3, 0, -1, 2, 0, 1], np.int32)
    runs = []
    for ptr, sub, w in ((ptr2, sub2, K.UNWEIGHTED), (BAG_PTR, BAG_SUB, wts)):
        win = (0.05 * np.arange(56, dtype=np.float32).reshape(7, 8) % 0.4).astype(np.float32)
        wout = np.full((4, 8), 0.05, np.float32)
        assert _run_kernel(tokens, win, wout, 0.1, skipgram, 2, ptr, sub, w) == K.OK
        runs.append((win, wout))
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(runs[0][0], 0.05 * np.arange(56).reshape(7, 8) % 0.4)


def test_a_negative_equal_to_the_target_is_drawn_again():
    """Half the noise distribution is the target itself (word 1); fastText redraws such a
    negative, so the other noise word (2) must be trained on in every run, not in about half."""
    sig, logsig = K.sigmoid_tables()
    negtab = K.alias_table(np.array([0.0, 0.5, 0.5]))
    for seed in range(40):
        win = np.full((3, 4), 0.1, np.float32)
        wout = np.full((3, 4), 0.1, np.float32)
        K.train_chunk(np.array([0, 1, -1], np.int32), np.arange(3, dtype=np.int32),
                      np.full(3, 1 << 32, np.int64), np.arange(4, dtype=np.int64),
                      np.arange(3, dtype=np.int32), K.UNWEIGHTED, K.NO_HOT, 0, win, wout, negtab, sig,
                      logsig, False, 1, 1,
                      0.1, 1e15, np.zeros(1, np.int64), 0, np.array([K.seed_state(seed, 1)], np.uint64),
                      np.zeros((1, 2)), np.zeros(1, np.int32))
        assert not np.allclose(wout[2], 0.1), seed


def test_kernel_reports_divergence_instead_of_indexing_with_nan():
    win = np.ones((3, 4), np.float32)
    wout = np.full((3, 4), np.inf, np.float32)
    assert _run_kernel(np.array([0, 1, -1], np.int32), win, wout, 0.1, False, 1) == K.DIVERGED
    wout[:] = np.nan
    assert _run_kernel(np.array([0, 1, -1], np.int32), win, wout, 0.1, True, 1) == K.DIVERGED


def test_alias_table_samples_the_unigram_power_distribution():
    from numba import njit

    @njit
    def draw(table, n):
        x = K.seed_state(7, 0)
        out = np.zeros(table.shape[0], np.int64)
        for _ in range(n):
            x = K._xorshift(x)
            out[K._negative(x, table)] += 1
        return out

    counts = np.array([1000, 100, 10, 5, 5, 1])
    p = counts ** 0.75 / (counts ** 0.75).sum()
    c = draw(negative_table(counts), 2_000_000)
    np.testing.assert_allclose(c / c.sum(), p, atol=1.5e-3)


def test_keep_thresholds_follow_word2vec_formula():
    counts = np.array([10_000, 100, 10])
    t = keep_thresholds(counts, 1e-3, 20_000)
    p = (np.sqrt(counts / 20) + 1) * 20 / counts
    assert t[0] == int(p[0] * 2**32) and t[1] == int(p[1] * 2**32) and t[2] == 2**32
    assert (keep_thresholds(counts, 0, 20_000) == 2**32).all()


def test_bag_means_are_fasttext_word_vectors():
    win = np.arange(12, dtype=np.float32).reshape(6, 2)
    ptr = np.array([0, 3, 4], np.int64)
    sub = np.array([0, 2, 5, 1], np.int32)
    out = np.empty((2, 2), np.float32)
    K.bag_means(win, ptr, sub, K.UNWEIGHTED, out)
    np.testing.assert_allclose(out, [win[[0, 2, 5]].mean(0), win[1]], rtol=1e-6)


def _hot_run(tokens, skipgram, ptr, sub, wts, hot):
    """One thread trained with ``hot`` rows in private copies (rows 7.. of an extended ``win``)."""
    from embedkit.wordvec.trainer import thread_plans

    rng = np.random.default_rng(8)
    win = np.zeros((7 + len(hot), 8), np.float32)
    win[:7] = rng.normal(scale=0.5, size=(7, 8))
    wout = np.full((4, 8), 0.05, np.float32)
    mine, hot, first = thread_plans(sub, hot, 7, 2)[1]  # thread 0 writes the shared rows
    assert first == 7 or len(hot) == 0
    assert _run_kernel(tokens, win, wout, 0.1, skipgram, 2, ptr, mine, wts, hot, first) == K.OK
    return win, wout


@pytest.mark.parametrize("skipgram", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bags", [True, False])
@pytest.mark.parametrize("n,atol", [(K.HOT_SYNC - 1, 1e-6), (3 * K.HOT_SYNC, 1e-3)])
def test_private_hot_rows_train_as_the_shared_rows_would(skipgram, weighted, bags, n, atol):
    """A thread that works on private copies of hot rows (merged every HOT_SYNC positions and at
    the chunk's end) makes the same updates as one writing them in place: alone, it ends with the
    same matrices up to float rounding, and each copy equals its merged shared row. (Rounding
    alone: a merge can move a row by an ulp, which later may flip a sigmoid-table index, a jump of
    ~1e-4 at this lr; so the runs with merges before the end get the looser bound. An update
    lost or counted twice would be off by ~0.1.)"""
    ptr, sub = (BAG_PTR, BAG_SUB) if bags else (np.arange(5, dtype=np.int64),
                                                 np.arange(4, dtype=np.int32))
    wts = np.random.default_rng(9).uniform(0.3, 2.0, len(sub)).astype(np.float32) if weighted \
        else K.UNWEIGHTED
    tokens = np.random.default_rng(10).integers(0, 4, n).astype(np.int32)
    tokens[::13] = -1
    plain, plain_out = _hot_run(tokens, skipgram, ptr, sub, wts, K.NO_HOT)
    hot = np.array([0, 3, 5] if bags else [0, 3], np.int32)
    win, wout = _hot_run(tokens, skipgram, ptr, sub, wts, hot)
    assert not np.allclose(win[:7], np.random.default_rng(8).normal(scale=0.5, size=(7, 8)))
    np.testing.assert_allclose(win[:7], plain[:7], rtol=0, atol=atol)
    np.testing.assert_allclose(wout, plain_out, rtol=0, atol=atol)
    assert np.array_equal(win[7:], win[hot])


def test_merging_private_copies_loses_no_threads_update():
    """Two threads' private copies of the same rows: each merge adds what that copy moved since
    it was taken, so the shared rows get both threads' updates, and the copy then holds them."""
    rng = np.random.default_rng(11)
    win = np.zeros((5 + 2 * 2, 3), np.float32)
    win[:5] = rng.normal(size=(5, 3))
    start = win[:5].copy()
    hot = np.array([1, 4], np.int32)
    snaps = [np.empty((2, 3), np.float32) for _ in range(2)]
    for t in range(2):
        K._sync_hot(win, hot, 5 + 2 * t, snaps[t], True)
    assert np.array_equal(win[5:7], start[hot]) and np.array_equal(win[7:9], start[hot])
    da, db = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    win[5:7] += da
    win[7:9] += db
    K._sync_hot(win, hot, 5, snaps[0], False)
    K._sync_hot(win, hot, 7, snaps[1], False)
    np.testing.assert_allclose(win[hot], start[hot] + da + db, rtol=1e-6)
    np.testing.assert_array_equal(win[[0, 2, 3]], start[[0, 2, 3]])
    np.testing.assert_array_equal(win[7:9], win[hot])
    K._sync_hot(win, hot, 5, snaps[0], False)  # thread 0 took b's update in, moved nothing
    np.testing.assert_allclose(win[hot], start[hot] + da + db, rtol=1e-6)
    np.testing.assert_array_equal(win[5:7], win[hot])


def test_hot_rows_are_the_most_written_and_only_with_threads(monkeypatch):
    """Each bag entry counts its word's expected kept occurrences (count x keep probability)."""
    from embedkit.wordvec import trainer

    counts = np.array([100, 10, 50, 1000])
    keep = np.array([1 << 32, 1 << 32, 1 << 31, 1 << 30], np.int64)  # p = 1, 1, 0.5, 0.25
    # kept: 100, 10, 25, 250; rows: 0: 100, 1: 10, 2: 25, 3: 250, 4: 100 + 25 = 125,
    # 5: 100 + 10 = 110, 6: 10
    monkeypatch.setattr(trainer, "HOT_ROWS", 3)
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 2, 100).tolist() == [3, 4, 5]
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 1, 100).size == 0
    # the other threads' copies of the 9 bag entries (36 bytes each) against a quarter of the
    # 8 x dim float32 matrix: 9 x 4 <= 8 x 5, but not 8 x 4; and with 3 threads, 72 > 8 x 5
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 2, 5).size == 3
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 2, 4).size == 0
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 3, 5).size == 0
    monkeypatch.setattr(trainer, "HOT_ROWS", 100)
    assert trainer.hot_rows(BAG_PTR, BAG_SUB, counts, keep, 8, 2, 100).tolist() == list(range(7))
    hot = np.array([3, 4], np.int32)
    plans = trainer.thread_plans(BAG_SUB, hot, 8, 3)
    assert plans[0][0] is BAG_SUB and plans[0][1].size == 0  # thread 0 writes the shared rows
    assert plans[1][0].tolist() == [0, 9, 5, 1, 5, 6, 2, 9, 8]
    assert plans[2][0].tolist() == [0, 11, 5, 1, 5, 6, 2, 11, 10]
    assert [p[1] is hot for p in plans[1:]] == [True, True] and [p[2] for p in plans[1:]] == [8, 10]
    assert BAG_SUB.tolist() == [0, 4, 5, 1, 5, 6, 2, 4, 3]
    alone = trainer.thread_plans(BAG_SUB, K.NO_HOT, 8, 2)
    assert all(s is BAG_SUB and h.size == 0 for s, h, _ in alone) and len(alone) == 2
