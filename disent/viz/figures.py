"""The figures of the papers, for any model: prior samples, traversal GIFs, latent-activation heatmaps
(Higgins et al. 2017), capacity allocation over training (Burgess et al. 2018) and the factor–latent
mutual-information matrix. Functions take arrays or `encode`/`decode` callables and return uint8 RGB
pictures (H, W, 3); nothing here knows about training.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from disent.results import write_atomic  # noqa: E402
from disent.viz.grids import image_grid  # noqa: E402


def figure_to_array(fig) -> np.ndarray:
    """A matplotlib figure as a uint8 RGB array (H, W, 3); the figure is closed."""
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


@torch.no_grad()
def prior_samples(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    rows: int,
    cols: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Images decoded from z ~ N(0, I): (rows, cols, C, H, W) in [0, 1]."""
    z = torch.randn(rows * cols, latent_dim, generator=generator).to(device)
    images = torch.sigmoid(decode(z)).cpu().numpy()
    return images.reshape(rows, cols, *images.shape[1:])


def traversal_frames(traversals: np.ndarray) -> list[np.ndarray]:
    """Frames of a traversal GIF from (Z, steps, C, H, W): frame t shows every latent at value t,
    sweeping forth and back so the animation loops smoothly."""
    steps = traversals.shape[1]
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    return [image_grid(traversals[None, :, t]) for t in order]


def save_gif(frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 120) -> Path:
    """Write uint8 RGB frames as a looping GIF, atomically (`disent.results.write_atomic`)."""
    images = [Image.fromarray(frame) for frame in frames]
    return write_atomic(
        path,
        lambda file: images[0].save(
            file, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0
        ),
    )


def latent_heatmaps(
    data,
    encode: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x_factor: int,
    y_factor: int,
    samples_per_cell: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean code of each latent over the grid of two factors (e.g. posX x posY): (Z, size_y, size_x).

    Every cell averages `samples_per_cell` observations whose other factors are drawn at random.
    On a data set that is not a full grid (`dataset=arrays`) they come from rows with the cell's
    two values (`with_fixed_factor`), and a cell no row has is NaN (blank in the figure).
    """
    size_x, size_y = data.factor_sizes[x_factor], data.factor_sizes[y_factor]
    factors = data.sample_factors(size_x * size_y * samples_per_cell, rng)
    cells = np.arange(size_x * size_y).repeat(samples_per_cell)
    factors[:, x_factor] = cells % size_x
    factors[:, y_factor] = cells // size_x
    fix = getattr(data, "with_fixed_factor", None)
    if fix is not None:  # a grid: unchanged, nothing drawn; else -1 rows for cells no row has
        factors = fix(factors, (x_factor, y_factor), rng)
        cells = cells[factors[:, 0] >= 0]
        factors = factors[factors[:, 0] >= 0]
    codes, _ = encode(data.sample_observations_from_factors(factors, rng))  # (N, Z)
    sums = np.zeros((size_x * size_y, codes.shape[1]))
    np.add.at(sums, cells, codes)
    counts = np.bincount(cells, minlength=size_x * size_y)[:, None]
    means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)  # NaN: a cell without rows
    return means.T.reshape(codes.shape[1], size_y, size_x)


def heatmap_figure(
    maps: np.ndarray, x_name: str, y_name: str, titles: Sequence[str] | None = None
) -> np.ndarray:
    """One small heatmap per latent, each on its own colour scale."""
    count = len(maps)
    cols = min(count, 5)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < count:
            ax.imshow(maps[i], cmap="viridis", origin="upper")
            ax.set_title(titles[i] if titles else f"z{i}", fontsize=8)
        else:
            ax.axis("off")
    fig.suptitle(f"mean code over {x_name} (→) × {y_name} (↓)", fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


def mi_matrix_figure(mi: np.ndarray, factor_names: Sequence[str]) -> np.ndarray:
    """Heatmap of a (Z, K) matrix of normalised mutual information I(z_j; v_k) / H(v_k)."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * mi.shape[1], 1.0 + 0.4 * mi.shape[0]))
    image = ax.imshow(mi, cmap="Blues", vmin=0, vmax=max(float(mi.max()), 1e-9), aspect="auto")
    ax.set_xticks(range(mi.shape[1]), factor_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(mi.shape[0]), [f"z{j}" for j in range(mi.shape[0])], fontsize=8)
    for (j, k), value in np.ndenumerate(mi):
        ax.text(
            k,
            j,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=6,
            color="white" if value > 0.5 * mi.max() else "black",
        )
    fig.colorbar(image, ax=ax, label="I(z; v) / H(v)")
    fig.tight_layout()
    return figure_to_array(fig)


def capacity_figure(
    steps: np.ndarray,
    kl_per_latent: np.ndarray,
    latent_factors: Sequence[str] | None = None,
    active_kl: float = 0.0,
) -> np.ndarray:
    """Per-latent KL over training (T,) x (T, Z), one line per latent, coloured by the factor it carries most;
    latents whose last KL is below `active_kl` nats are grey and share one legend entry (they carry nothing,
    so the factor their mutual information points to is noise)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = list(latent_factors) if latent_factors else [""] * kl_per_latent.shape[1]
    active = kl_per_latent[-1] >= active_kl  # (Z,)
    palette = {
        name: plt.cm.tab10(i % 10)
        for i, name in enumerate(dict.fromkeys(np.asarray(labels)[active].tolist()))
    }
    inactive_label = f"inactive (KL < {active_kl:g} nats)"
    for j in range(kl_per_latent.shape[1]):
        if active[j]:
            ax.plot(
                steps,
                kl_per_latent[:, j],
                color=palette[labels[j]],
                label=f"z{j} {labels[j]}".strip(),
            )
        else:  # one legend entry for all of them
            ax.plot(steps, kl_per_latent[:, j], color="0.7", label=inactive_label)
            inactive_label = None
    ax.set_xlabel("step")
    ax.set_ylabel("KL(q(z_j|x) || p(z_j)) [nats]")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return figure_to_array(fig)
