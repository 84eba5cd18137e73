"""Ground-truth data: observations generated from a grid of known, discrete factors.

Metrics need to sample factors, render the matching observations and map grid indices to factors
and back; everything here is about that grid. Randomness always comes from an explicit
`numpy.random.Generator` (an int seed is accepted where noted), never from a global RNG, so a
run is reproducible from its seeds alone.
"""

import operator
from collections.abc import Sequence

import numpy as np


def as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    """A Generator from a Generator (returned as is) or an int seed.

    None is refused on purpose: it would mean fresh OS entropy, i.e. an unreproducible stream.
    """
    if rng is None or isinstance(rng, bool):
        raise TypeError(
            "pass a numpy.random.Generator or an int seed (None would be unreproducible)"
        )
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(operator.index(rng))


class GroundTruthData:
    """A data set whose observations are generated from known discrete factors.

    Subclasses set `factor_names`, `factor_sizes`, `observation_shape` (and `deterministic`) and
    implement `sample_observations_from_factors`; the grid bookkeeping lives here. Grid index i
    enumerates factor tuples row-major with the LAST factor fastest (the order of the dSprites
    file).
    """

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    observation_shape: tuple[int, int, int] = (1, 1, 1)  # (C, H, W), float32 in [0, 1]
    # True when the observation is a pure function of the factors (no observation noise):
    # metrics may then encode the whole grid once and cache it.
    deterministic: bool = True

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    # --- index <-> factors ------------------------------------------------------------------

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """`factors` as an (N, K) int64 array; ValueError naming the first factor out of range."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(
                f"factors must have shape (N, {self.num_factors}), got {factors.shape}"
            )
        if factors.size and not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(
                f"factors must be integers (grid positions), got dtype {factors.dtype}"
            )
        factors = factors.astype(np.int64, copy=False)
        for k, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes, strict=True)):
            bad = (factors[:, k] < 0) | (factors[:, k] >= size)
            if bad.any():
                raise ValueError(
                    f"factor '{name}' must be in [0, {size}), got {factors[bad, k][0]}"
                )
        return factors

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        """(N,) grid indices -> (N, K) int64 factors (row-major, last factor fastest)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise ValueError(
                f"indices must be in [0, {len(self)}), got values in "
                f"[{indices.min()}, {indices.max()}]"
            )
        return np.stack(np.unravel_index(indices, self.factor_sizes), axis=-1).astype(np.int64)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """(N, K) factors -> (N,) int64 grid indices; the inverse of `index_to_factors`."""
        factors = self.check_factors(factors)
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

    # --- sampling ---------------------------------------------------------------------------

    def sample_factors(self, n: int, rng: np.random.Generator | int) -> np.ndarray:
        """(n, K) int64 factors, each uniform over its values, independently."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return as_rng(rng).integers(0, sizes, size=(n, self.num_factors), dtype=np.int64)

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, K) factors -> (N, C, H, W) float32 in [0, 1].

        `rng` drives observation noise; deterministic data sets ignore it (None is fine there).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement sample_observations_from_factors"
        )

    def with_fixed_factor(
        self, factors: np.ndarray, k: int | Sequence[int], rng: np.random.Generator | int
    ) -> np.ndarray:
        """Factors whose column `k` a caller has overwritten, made into combinations that exist.

        Callers that fix a factor across drawn factors (the BetaVAE and FactorVAE scores, the
        preview's sweeps, the latent heatmaps with two columns `k`) pass the result on to
        `sample_observations_from_factors`. On a grid every combination exists: `factors` is
        returned as it is and nothing is drawn from `rng`, so the callers' random streams are those
        of disentanglement_lib. A data set that is not a full grid (`disent.data.arrays`) replaces
        the combinations it lacks with existing ones sharing the values of column(s) `k`.
        """
        return factors

    def sample_observations(self, n: int, rng: np.random.Generator | int) -> np.ndarray:
        """(n, C, H, W) float32 observations of uniformly sampled factors."""
        return self.sample(n, rng)[1]

    def sample(self, n: int, rng: np.random.Generator | int) -> tuple[np.ndarray, np.ndarray]:
        """(factors (n, K) int64, observations (n, C, H, W) float32), both from the same `rng`."""
        rng = as_rng(rng)
        factors = self.sample_factors(n, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def __getitem__(self, index: int) -> np.ndarray:
        """(C, H, W) float32 observation of grid index `index`.

        Noisy data sets draw their noise from a Generator seeded by the index, so that
        `data[i]` is still a fixed array.
        """
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} grid points")
        factors = self.index_to_factors(np.array([index]))
        return self.sample_observations_from_factors(factors, np.random.default_rng(index))[0]
