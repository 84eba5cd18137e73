"""DCI-ES (Eastwood et al. 2023): explicitness against the authors' code on fixed arrays, its known
answers on curves, and size."""

from pathlib import Path

import numpy as np
import pytest

from disent.metrics.dci_es import dci_es, explicitness

FIXTURE = np.load(Path(__file__).parent / "fixtures" / "dci_es_reference.npz")
TRAIN = 1000
DEPTHS = (1, 2, 4, 8, 16)  # the fixture's ladder and forest size (make_dci_es_fixtures.py)
TREES = 20


@pytest.mark.parametrize("name", ["perfect", "noisy", "rotated", "random"])
def test_dci_es_equals_the_authors_code(name):
    codes, factors = FIXTURE[f"{name}/codes"], FIXTURE["factors"]
    got = dci_es(
        codes[:TRAIN],
        factors[:TRAIN],
        codes[TRAIN:],
        factors[TRAIN:],
        depths=DEPTHS,
        n_estimators=TREES,
    )
    per_factor = [got[f"explicitness.{k}"] for k in range(factors.shape[1])]
    np.testing.assert_allclose(per_factor, FIXTURE[f"{name}/explicitness"], atol=1e-12)
    assert got["explicitness"] == pytest.approx(FIXTURE[f"{name}/explicitness"].mean(), abs=1e-12)
    for key in ("disentanglement", "completeness", "informativeness_test"):
        assert got[key] == pytest.approx(float(FIXTURE[f"{name}/{key}"]), abs=1e-12), key
    assert got["size"] == factors.shape[1] / codes.shape[1]


def test_explicitness_known_answers():
    depths = [1, 2, 3, 4, 5]
    # the lowest capacity already reaches the lowest loss: 1
    assert explicitness(depths, [0.1, 0.1, 0.1, 0.1, 0.1], 0.9) == 1.0
    # a linear fall from the baseline to 0 over the whole range: 1 - 2 * (1/2) = 0
    assert explicitness(depths, [1.0, 0.75, 0.5, 0.25, 0.0], 1.0) == pytest.approx(0.0)
    # the loss kept only when it falls (a worse probe after a better one counts as the better)
    assert explicitness(depths, [1.0, 0.0, 0.5, 0.0, 0.0], 1.0) == explicitness(
        depths, [1.0, 0.0, 0.0, 0.0, 0.0], 1.0
    )
    # needing more capacity for the same loss is less explicit
    early = explicitness(depths, [0.5, 0.0, 0.0, 0.0, 0.0], 1.0)
    late = explicitness(depths, [0.5, 0.5, 0.5, 0.0, 0.0], 1.0)
    assert early == pytest.approx(1 - 2 * 0.25 / 4) and late < early


def test_explicit_codes_beat_entangled_ones_and_permutation_does_not_matter():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 16, (1500, 2))
    plain = factors / 15
    # factor 0's 16 values in a shuffled order along its code: shallow trees cannot cut them apart
    hidden = np.stack([rng.permutation(16)[factors[:, 0]] / 15, plain[:, 1]], axis=1)
    kwargs = {"depths": (1, 2, 4, 8), "n_estimators": 50}
    easy = dci_es(plain[:1000], factors[:1000], plain[1000:], factors[1000:], **kwargs)
    hard = dci_es(hidden[:1000], factors[:1000], hidden[1000:], factors[1000:], **kwargs)
    # both read it in the end
    assert min(easy["informativeness_test"], hard["informativeness_test"]) > 0.95
    assert easy["explicitness.0"] > hard["explicitness.0"] + 0.05
    assert easy["explicitness.1"] == pytest.approx(hard["explicitness.1"], abs=0.03)
    # the forests draw features at random, so a permutation of the code changes E by sampling only
    swapped = dci_es(
        plain[:1000, ::-1], factors[:1000], plain[1000:, ::-1], factors[1000:], **kwargs
    )
    assert swapped["explicitness"] == pytest.approx(easy["explicitness"], abs=0.04)
    assert swapped["size"] == easy["size"] == 1.0


def test_bad_depths_are_one_clear_error():
    codes = np.zeros((10, 2))
    factors = np.zeros((10, 1), dtype=int)
    with pytest.raises(ValueError, match="increasing"):
        dci_es(codes, factors, codes, factors, depths=(4, 2))
