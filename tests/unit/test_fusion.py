from __future__ import annotations

import numpy as np
import pytest

from omniretrieve.fusion import rrf_fusion, top, zscore_fusion


def test_zscore_fusion_rewards_agreement() -> None:
    sparse = {"a": 10.0, "b": 5.0, "c": 1.0}
    dense = {"a": 0.9, "c": 0.8, "d": 0.1}
    fused = zscore_fusion([sparse, dense])
    assert top(fused, 1)[0][0] == "a"
    # "b" is missing from dense: it gets dense's lowest z-score, not zero
    assert fused["b"] < fused["c"]
    assert set(fused) == {"a", "b", "c", "d"}


def test_weights_and_scale_invariance() -> None:
    sparse = {"a": 1.0, "b": 2.0}
    dense = {"a": 0.9, "b": 0.1}
    assert top(zscore_fusion([sparse, dense], [1.0, 3.0]), 1)[0][0] == "a"
    assert top(zscore_fusion([sparse, dense], [3.0, 1.0]), 1)[0][0] == "b"
    scaled = {k: v * 1000 for k, v in sparse.items()}
    assert zscore_fusion([sparse, dense]) == pytest.approx(zscore_fusion([scaled, dense]))
    with pytest.raises(ValueError):
        zscore_fusion([sparse], [1.0, 2.0])


def test_constant_and_empty_lists() -> None:
    assert zscore_fusion([{"a": 1.0, "b": 1.0}, {}]) == {"a": 0.0, "b": 0.0}


def test_rrf() -> None:
    fused = rrf_fusion([{"a": 3.0, "b": 2.0}, {"b": 0.9, "a": 0.1}])
    assert fused["a"] == pytest.approx(fused["b"])
    assert rrf_fusion([{"a": 3.0, "b": 2.0}])["a"] == pytest.approx(1 / 61)


def test_zscore_matrix_gives_zscore_fusion_for_any_weights() -> None:
    from omniretrieve.fusion import zscore_matrix

    rng = np.random.default_rng(0)
    runs = [
        {f"d{i}": float(rng.normal()) for i in rng.choice(30, 12, replace=False)},
        {f"d{i}": float(rng.normal()) for i in rng.choice(30, 15, replace=False)},
        {},
        {f"d{i}": 1.0 for i in range(3)},  # constant list: z-scores of zero
    ]
    docs, matrix = zscore_matrix(runs)
    for weights in ([1, 1, 1, 1], [0.2, 0.5, 3.0, 0.3], [0, 1, 0, 0]):
        fused = zscore_fusion(runs, weights)
        assert set(docs) == set(fused)
        combined = np.asarray(weights, dtype=np.float64) @ matrix
        assert dict(zip(docs, combined.tolist(), strict=True)) == pytest.approx(fused)


def test_every_method_fuses_as_weights_times_its_matrix() -> None:
    from omniretrieve.fusion.methods import FUSION_METHODS, fuse

    runs = [{"a": 3.0, "b": 1.0, "c": 0.5}, {"b": 0.9, "d": 0.7, "a": 0.1}, {}]
    assert fuse(FUSION_METHODS["zscore"], runs, [0.2, 0.8, 1.0]) == pytest.approx(
        zscore_fusion(runs, [0.2, 0.8, 1.0])
    )
    assert fuse(FUSION_METHODS["rrf"], runs, [1.0, 2.0, 1.0]) == pytest.approx(
        rrf_fusion(runs, [1.0, 2.0, 1.0])
    )
    for method in FUSION_METHODS.values():
        docs, matrix = method.matrix(runs)
        assert sorted(docs) == ["a", "b", "c", "d"] and matrix.shape == (3, 4)


def test_adaptive_fusion_trusts_the_decisive_list_more() -> None:
    """Two lists disagree on the winner: fixed z-scores tie them; the adaptive method follows
    the list whose best stands far above its tenth (the flat one says little)."""
    from omniretrieve.fusion.methods import FUSION_METHODS, fuse

    decisive = {"x": 10.0, **{f"d{i}": 1.0 + i / 100 for i in range(20)}}
    flat = {"y": 1.05, **{f"d{i}": 1.0 + i / 1000 for i in range(20)}}
    adaptive = fuse(FUSION_METHODS["zscore-adaptive"], [decisive, flat], None)
    assert max(adaptive, key=adaptive.__getitem__) == "x"
    fixed = fuse(FUSION_METHODS["zscore"], [flat, decisive], [1.0, 1.0])
    adaptive_reversed = fuse(FUSION_METHODS["zscore-adaptive"], [flat, decisive], None)
    assert adaptive_reversed["x"] - adaptive_reversed["y"] > fixed["x"] - fixed["y"]


def test_mixing_a_reranker_moves_from_its_order_to_the_first_stage() -> None:
    import numpy as np

    from omniretrieve.fusion import mix_scores

    rerank, first = np.array([0.9, 0.1, 0.5]), np.array([1.0, 3.0, 2.0])
    mixed = mix_scores(rerank, first, np.array([0.0, 1.0]))
    assert list(np.argsort(-mixed[0])) == [0, 2, 1]  # the reranker's order
    assert list(np.argsort(-mixed[1])) == [1, 2, 0]  # the first stage's
