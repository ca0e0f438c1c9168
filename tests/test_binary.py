"""Sign binarisation and Hamming MaxSim: hand-worked cases and equality with a ±1 torch MaxSim."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from rag.index.binary import BinaryPages, binarize, hamming_maxsim, warmup


def signs(pattern: str) -> torch.Tensor:
    """A vector from a string of + and - (one component each)."""
    return torch.tensor([1.0 if c == "+" else -1.0 for c in pattern])


def offsets_of(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def sign_maxsim(query: torch.Tensor, pages: list[torch.Tensor]) -> list[float]:
    """The reference: exact MaxSim of the ±1 sign vectors (zero counts as negative)."""
    q = torch.where(query > 0, 1.0, -1.0)
    scores = []
    for page in pages:
        if page.shape[0] == 0:
            scores.append(float("-inf"))
            continue
        p = torch.where(page > 0, 1.0, -1.0)
        scores.append(float((q @ p.T).max(dim=1).values.sum()))
    return scores


def test_binarize_packs_sign_bits_little_endian_within_words():
    vector = -torch.ones(1, 128)
    vector[0, [0, 3, 63, 64, 127]] = 0.5
    bits = binarize(vector)
    assert bits.shape == (1, 2)
    assert bits.dtype == np.uint64
    assert int(bits[0, 0]) == (1 << 0) | (1 << 3) | (1 << 63)
    assert int(bits[0, 1]) == (1 << 0) | (1 << 63)


def test_binarize_keeps_exactly_the_sign_pattern():
    vectors = torch.randn(37, 256)
    vectors[0, :10] = 0.0  # zero is not positive
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        bits = binarize(vectors.to(dtype))
        unpacked = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")
        assert np.array_equal(unpacked.astype(bool), (vectors > 0).numpy())


def test_binarize_rejects_bad_shapes():
    with pytest.raises(ValueError, match="multiple of 64"):
        binarize(torch.randn(3, 100))
    with pytest.raises(ValueError, match="expected"):
        binarize(torch.randn(128))


def test_hamming_maxsim_by_hand_dim_64():
    query = torch.stack([signs("+" * 64), signs("+" * 32 + "-" * 32)])
    same = signs("+" * 64)  # query token 0: 64; token 1: 32 agree, 32 disagree -> 0
    half = signs("+" * 32 + "-" * 32)  # token 0: 0; token 1: 64
    flipped = signs("-" * 64)  # token 0: -64; token 1: 0
    one_off = signs("-" + "+" * 63)  # token 0: 62; token 1: 31 - 1 - 32 = -2
    pages = [torch.stack([same]), torch.stack([half, flipped]), torch.stack([flipped, one_off])]
    scores = hamming_maxsim(
        binarize(query), binarize(torch.cat(pages)), offsets_of([p.shape[0] for p in pages])
    )
    assert scores.dtype == np.float32
    assert scores.tolist() == [64.0 + 0.0, 0.0 + 64.0, 62.0 + 0.0]


def test_hamming_maxsim_by_hand_dim_128():
    query = signs("+" * 128)[None]
    # 10 negative components -> 118 - 10 = 108; all negative -> -128; best of the two: 108
    near, opposite = signs("-" * 10 + "+" * 118), signs("-" * 128)
    page = torch.stack([near, opposite, opposite, near])
    scores = hamming_maxsim(binarize(query), binarize(page), offsets_of([1, 1, 2]))
    assert scores.tolist() == [108.0, -128.0, 108.0]


def test_a_page_without_tokens_scores_minus_infinity():
    bits = binarize(torch.randn(5, 128))
    scores = hamming_maxsim(binarize(torch.randn(3, 128)), bits, offsets_of([2, 0, 3]))
    assert np.isneginf(scores[1])
    assert np.isfinite(scores[[0, 2]]).all()


@pytest.mark.parametrize("dim", [64, 128, 192, 256])
@pytest.mark.parametrize("query_tokens", [1, 20, 24, 25, 33, 70])
def test_hamming_maxsim_equals_torch_maxsim_on_sign_vectors(dim, query_tokens):
    generator = torch.Generator().manual_seed(dim * 100 + query_tokens)
    lengths = torch.randint(1, 60, (23,), generator=generator).tolist()
    lengths[5] = 0
    pages = [torch.randn(n, dim, generator=generator) for n in lengths]
    query = torch.randn(query_tokens, dim, generator=generator)
    scores = hamming_maxsim(binarize(query), binarize(torch.cat(pages)), offsets_of(lengths))
    assert scores.tolist() == sign_maxsim(query, pages)


def test_offsets_may_cover_part_of_the_bits():
    page_bits = binarize(torch.randn(50, 128))
    query_bits = binarize(torch.randn(4, 128))
    whole = hamming_maxsim(query_bits, page_bits, offsets_of([10] * 5))
    middle = hamming_maxsim(query_bits, page_bits, np.array([20, 30, 40], np.int64))
    assert middle.tolist() == whole[2:4].tolist()


def test_degenerate_inputs():
    bits = binarize(torch.randn(4, 128))
    assert hamming_maxsim(binarize(torch.randn(2, 128)), bits, np.array([0])).shape == (0,)
    empty_query = np.zeros((0, 2), np.uint64)
    assert hamming_maxsim(empty_query, bits, offsets_of([4])).tolist() == [0.0]


def test_bad_arguments_are_refused():
    bits = binarize(torch.randn(4, 128))
    with pytest.raises(ValueError, match="same number of words"):
        hamming_maxsim(binarize(torch.randn(2, 64)), bits, offsets_of([4]))
    with pytest.raises(ValueError, match="offsets"):
        hamming_maxsim(binarize(torch.randn(2, 128)), bits, np.array([0, 5], np.int64))
    with pytest.raises(ValueError, match="offsets"):
        hamming_maxsim(binarize(torch.randn(2, 128)), bits, np.array([0, 3, 2], np.int64))


def test_concurrent_queries_from_threads_agree():
    warmup()
    page_bits = binarize(torch.randn(3000, 128))
    offsets = offsets_of([30] * 100)
    queries = [binarize(torch.randn(20, 128)) for _ in range(8)]
    expected = [hamming_maxsim(q, page_bits, offsets) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda q: hamming_maxsim(q, page_bits, offsets), queries))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def random_pages(seed: int, n_pages: int = 40, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 50, (n_pages,), generator=generator).tolist()
    lengths[3] = 0
    return binarize(torch.randn(sum(lengths), dim, generator=generator)), offsets_of(lengths)


@pytest.mark.parametrize("query_tokens", [1, 20, 30])
def test_scores_of_chosen_rows_equal_the_full_scan(query_tokens):
    bits, offsets = random_pages(query_tokens)
    pages = BinaryPages.from_bits(bits, offsets)
    query = binarize(torch.randn(query_tokens, 128))
    full = pages.scores(query)
    rows = np.array([7, 3, 0, 39, 7], np.int64)  # any order, repeats allowed, an empty page
    assert pages.scores(query, rows).tolist() == full[rows].tolist()
    assert full.tolist() == hamming_maxsim(query, bits, offsets).tolist()


@pytest.mark.parametrize("query_tokens", [1, 20, 30])
def test_prefilter_scores_are_hamming_maxsim_on_the_first_64_bits(query_tokens):
    bits, offsets = random_pages(100 + query_tokens)
    query = binarize(torch.randn(query_tokens, 128))
    got = BinaryPages.from_bits(bits, offsets).prefilter_scores(query)
    first_words = hamming_maxsim(query[:, :1], bits[:, :1], offsets)
    assert got.tolist() == first_words.tolist()


def test_top_without_prefilter_is_the_full_ranking():
    bits, offsets = random_pages(7)
    pages = BinaryPages.from_bits(bits, offsets)
    query = binarize(torch.randn(20, 128))
    rows, scores = pages.top(query, 5, prefilter=0)
    full = pages.scores(query)
    expected = sorted(range(len(full)), key=lambda row: (-full[row], row))[:5]
    assert rows.tolist() == expected
    assert scores.tolist() == full[expected].tolist()
    assert pages.top(query, 5, prefilter=8)[0].tolist() == expected  # would keep 40: no pass
    assert pages.top(query, 100)[0].shape == (40,)


def test_the_prefilter_pass_keeps_pages_by_their_first_word_then_ranks_by_all_bits():
    query = signs("+" * 128)[None]
    # first word right, second wrong: 64 - 64 = 0 in full, 64 on the first word
    first_only = signs("+" * 64 + "-" * 64)
    # first word 4 bits off, second word right: 56 + 64 = 120 in full, 56 on the first word
    mostly = signs("-" * 4 + "+" * 124)
    wrong = signs("-" * 128)
    pages = BinaryPages.from_bits(  # 10 pages: a pass keeping 2 keeps at most a quarter
        binarize(torch.stack([wrong, first_only, wrong, mostly, *[wrong] * 6])),
        offsets_of([1] * 10),
    )
    q = binarize(query)
    assert pages.top(q, 1, prefilter=0)[0].tolist() == [3]  # the full scan finds `mostly`
    assert pages.top(q, 1, prefilter=2)[0].tolist() == [3]  # kept (2nd on 64 bits), then best
    rows, scores = pages.top(q, 1, prefilter=1)  # only the best on 64 bits survives
    assert rows.tolist() == [1] and scores.tolist() == [0.0]  # scored on all 128 bits


def test_binary_pages_concatenate_documents():
    parts = [random_pages(seed, n_pages=5) for seed in (1, 2, 3)]
    pages = BinaryPages.concatenate(
        [bits for bits, _ in parts], [np.diff(offsets) for _, offsets in parts]
    )
    query = binarize(torch.randn(9, 128))
    expected = np.concatenate([hamming_maxsim(query, bits, off) for bits, off in parts])
    assert pages.n_pages == 15 and pages.scores(query).tolist() == expected.tolist()
    assert BinaryPages.concatenate([], []).n_pages == 0


def test_bad_rows_are_refused():
    bits, offsets = random_pages(3)
    pages = BinaryPages.from_bits(bits, offsets)
    with pytest.raises(ValueError, match="page rows"):
        pages.scores(binarize(torch.randn(2, 128)), np.array([40]))


def test_the_prefilter_pass_runs_only_when_it_keeps_at_most_a_quarter_of_the_pages(monkeypatch):
    pages = BinaryPages.from_bits(*random_pages(9))  # 40 pages
    calls = []
    original = pages.prefilter_scores
    monkeypatch.setattr(pages, "prefilter_scores", lambda q, r: calls.append(1) or original(q, r))
    query = binarize(torch.randn(20, 128))
    pages.top(query, 5, prefilter=2)  # keeps 10 of 40: runs
    assert calls == [1]
    pages.top(query, 5, prefilter=3)  # would keep 15: costs more than it saves
    pages.top(query, 5, prefilter=0)  # off
    assert calls == [1]


def test_top_within_rows_runs_the_prefilter_and_the_full_pass_inside_them():
    pages = BinaryPages.from_bits(*random_pages(11))  # 40 pages
    query = binarize(torch.randn(20, 128))
    rows = np.arange(3, 40, 2)  # 19 pages in scope
    full = pages.scores(query)
    for prefilter in (0, 1):  # off; on (keeps 1 x 4 of 19: under a quarter)
        chosen, scores = pages.top(query, 4, prefilter=prefilter, rows=rows)
        assert set(chosen.tolist()) <= set(rows.tolist())
        np.testing.assert_array_equal(scores, full[chosen])
        if prefilter == 0:  # exactly the best 4 of the scope
            best = rows[np.argsort(-full[rows], kind="stable")[:4]]
            assert chosen.tolist() == best.tolist()
    chosen, _ = pages.top(query, 50, rows=rows)  # more than the scope holds: all of it
    assert sorted(chosen.tolist()) == rows.tolist()
    assert pages.top(query, 3, rows=np.zeros(0, np.int64))[0].shape == (0,)
