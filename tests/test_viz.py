"""Every figure function returns a picture of the expected size from a small random model."""

import numpy as np
import torch

from disent.data import DSprites
from disent.models import encoder_of
from disent.models.regularizers import BetaVAELoss
from disent.models.vae import VAE
from disent.nets import build_encoder_decoder
from disent.viz import image_grid, latent_traversals
from disent.viz.figures import (
    capacity_figure,
    heatmap_figure,
    latent_heatmaps,
    mi_matrix_figure,
    prior_samples,
    save_gif,
    traversal_frames,
)

OPTIMIZER = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}


def small_vae(latent_dim: int = 4) -> VAE:
    torch.manual_seed(0)
    encoder, decoder = build_encoder_decoder("mlp", (1, 64, 64), latent_dim, hidden_dim=16)
    return VAE(
        encoder, decoder, BetaVAELoss(1.0), "bernoulli", OPTIMIZER, final_loss_window=5
    ).eval()


def test_prior_samples_and_traversals_have_the_grid_shapes(tmp_path):
    model = small_vae()
    samples = prior_samples(
        model.decode, 4, rows=2, cols=5, generator=torch.Generator().manual_seed(0)
    )
    assert samples.shape == (2, 5, 1, 64, 64) and 0 <= samples.min() and samples.max() <= 1
    x = torch.from_numpy(DSprites().sample_observations(16, np.random.default_rng(0)))
    traversals, kl = latent_traversals(x[:1], x, model.encode, model.decode, 2.0, 7)
    # most informative first
    assert traversals.shape == (4, 7, 1, 64, 64) and np.all(np.diff(kl) <= 0)
    picture = image_grid(traversals)
    assert picture.shape == (4 * 66 + 2, 7 * 66 + 2, 3) and picture.dtype == np.uint8
    frames = traversal_frames(traversals)
    assert len(frames) == 2 * 7 - 2 and frames[0].shape == (66 + 2, 4 * 66 + 2, 3)
    path = save_gif(frames, tmp_path / "t.gif")
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames == len(frames)


def test_heatmaps_average_codes_over_the_position_grid():
    data = DSprites()
    model = small_vae(latent_dim=3)
    maps = latent_heatmaps(
        data, encoder_of(model, 256), 3, 4, samples_per_cell=1, rng=np.random.default_rng(0)
    )
    assert maps.shape == (3, 32, 32) and np.isfinite(maps).all()

    # a "code" that is the posX factor itself gives a map that grows along x only
    class Position:
        def __call__(self, observations):
            mass = observations.sum(axis=(1, 2))  # (N, W) column sums
            centroid = (mass * np.arange(64)).sum(1) / mass.sum(1)
            return np.stack([centroid, -centroid], 1), np.zeros((len(observations), 2))

    maps = latent_heatmaps(data, Position(), 3, 4, samples_per_cell=2, rng=np.random.default_rng(1))
    assert np.all(np.diff(maps[0], axis=1) > 0) and np.allclose(maps[0], maps[0][:1], atol=1.5)
    picture = heatmap_figure(maps, "posX", "posY")
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8


def test_mi_matrix_and_capacity_figures_render():
    mi = np.random.default_rng(0).random((10, 5))
    picture = mi_matrix_figure(mi, ["shape", "scale", "orientation", "posX", "posY"])
    assert picture.ndim == 3 and picture.shape[2] == 3 and min(picture.shape[:2]) > 100
    steps = np.arange(0, 1000, 25)
    kl = np.random.default_rng(1).random((len(steps), 10)).cumsum(0)
    picture = capacity_figure(steps, kl, ["posX"] * 5 + ["scale"] * 5)
    assert picture.shape[2] == 3 and picture.shape[0] > 200 and picture.shape[1] > 400
    # matplotlib's "0.7" (0.7 * 255 rounded): inactive latents
    grey = np.all(picture == 179, axis=2).sum()
    kl[:, 5:] = 0.0  # five latents that never carry anything
    greyed = capacity_figure(steps, kl, ["posX"] * 5 + ["scale"] * 5, active_kl=0.1)
    assert np.all(greyed == 179, axis=2).sum() > grey + 100
