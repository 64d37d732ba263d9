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
