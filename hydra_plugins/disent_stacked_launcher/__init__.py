"""disent's Hydra launcher plugin: `hydra/launcher=stacked` (see disent.stack)."""
