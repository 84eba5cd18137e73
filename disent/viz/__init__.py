"""Figures of what a model learned, as uint8 RGB arrays and PNG files."""

from disent.viz.grids import image_grid, labelled_rows, save_png, stack_vertically
from disent.viz.traversals import code_traversals, latent_traversals, reconstruction_rows

__all__ = [
    "image_grid",
    "labelled_rows",
    "save_png",
    "stack_vertically",
    "latent_traversals",
    "reconstruction_rows",
    "code_traversals",
]
