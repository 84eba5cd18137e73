"""InfoMEC (Hsu et al. 2023): against the authors' code on fixed arrays, known answers and
invariances."""

from pathlib import Path

import numpy as np
import pytest

from disent.metrics.infomec import infomec, normalized_mutual_information

FIXTURE = np.load(Path(__file__).parent / "fixtures" / "infomec_reference.npz")
NAMES = ["perfect", "noisy", "rotated", "random", "discrete"]
KEYS = ("infom", "infoe", "infoc")


def _codes(name: str) -> np.ndarray:
    return FIXTURE[f"{name}/codes"]


@pytest.mark.parametrize("name", NAMES)
def test_infomec_equals_the_authors_code(name):
    factors = FIXTURE["factors"]
    got = infomec(_codes(name), factors, discrete_codes=name == "discrete")
    labels = np.stack([np.unique(c, return_inverse=True)[1] for c in factors.T], axis=1)
    nmi = normalized_mutual_information(labels, _codes(name), name == "discrete", 10, 0)
    np.testing.assert_allclose(nmi, FIXTURE[f"{name}/nmi"], atol=1e-9)
    assert got["num_active_dims"] == FIXTURE[f"{name}/active_latents"].sum()
    for key in KEYS:
        reference = float(FIXTURE[f"{name}/{key}"])
        if np.isnan(reference):  # theirs: 0/0 for a latent that informs about no factor
            continue
        assert got[key] == pytest.approx(reference, abs=1e-8), key


def test_an_uninformative_latent_counts_as_chance_in_infom():
    """The random code has a latent whose KSG estimate is 0 for every factor: the authors' InfoM is
    NaN; ours counts that latent's share as 1/K (0 after normalisation)."""
    assert np.isnan(FIXTURE["random/infom"])
    nmi = FIXTURE["random/nmi"]  # (K, D)
    assert (nmi[:, 0] == 0).all()
    k = nmi.shape[0]
    shares = [1 / k] + [column.max() / column.sum() for column in nmi.T[1:]]
    expected = (np.mean(shares) - 1 / k) / (1 - 1 / k)
    got = infomec(_codes("random"), FIXTURE["factors"])
    assert got["infom"] == pytest.approx(expected, abs=1e-9)
    assert got["infom"] < 0.3


def test_known_answers_order_perfect_above_rotated_above_random():
    factors = FIXTURE["factors"]
    perfect, rotated, random = (
        infomec(_codes(n), factors) for n in ("perfect", "rotated", "random")
    )
    for key in KEYS:
        assert perfect[key] > 0.95, key
        assert perfect[key] > rotated[key] > random[key], key
    assert random["infoe"] < 0.05  # noise predicts nothing
    assert perfect["num_active_dims"] == 3  # the nearly constant fourth latent is pruned


def test_noise_latents_lower_infom_not_infoc():
    """Active latents that carry nothing dilute modularity (their shares are near chance) but leave
    each factor's best latent as it was (InfoC barely moves)."""
    factors = FIXTURE["factors"]
    perfect = _codes("perfect")[:, :3]
    noise = np.random.default_rng(0).normal(size=(len(perfect), 2)) * perfect.std()
    clean = infomec(perfect, factors)
    padded = infomec(np.concatenate([perfect, noise], axis=1), factors)
    assert padded["infom"] < clean["infom"] - 0.1
    assert padded["infoc"] == pytest.approx(clean["infoc"], abs=0.05)
    assert padded["infoe"] == pytest.approx(clean["infoe"], abs=0.01)


def test_invariances():
    factors = FIXTURE["factors"]
    codes = _codes("noisy")
    base = infomec(codes, factors)
    permuted = infomec(codes[:, [3, 0, 4, 2, 1]], factors)
    scaled = infomec(3.0 * codes - 7.0, factors)  # every latent alike: pruning ratios unchanged
    relabelled = infomec(codes, factors * 10 + 5)  # factor values, not their positions, change
    for other in (permuted, scaled, relabelled):
        for key in KEYS:
            assert other[key] == pytest.approx(base[key], abs=1e-6), key


def test_scaling_one_latent_down_prunes_it():
    """Pruning is by range relative to the widest latent: one shrunk under 1/20 of it is dropped."""
    factors = FIXTURE["factors"]
    codes = _codes("noisy").copy()
    codes[:, 3] *= 1e-3
    assert infomec(codes, factors)["num_active_dims"] == 4


def test_single_active_latent_and_bad_input():
    factors = FIXTURE["factors"]
    one = infomec(_codes("perfect")[:, :1], factors)
    assert one["infoc"] == 1.0 and one["num_active_dims"] == 1
    with pytest.raises(ValueError, match="same N"):
        infomec(_codes("perfect")[:10], factors)
