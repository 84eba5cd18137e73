"""An endless, seeded, resumable stream of training batches from a ground-truth data set.

Batch i of the stream is drawn with its own Generator, `np.random.default_rng([seed, i])`. So the
stream is a function of `seed` alone: it is the same with any number of workers (worker w of W
makes batches w, w + W, ..., and the DataLoader hands them out in order), and resuming only needs
the number of batches already consumed, not a generator's state.
"""

import warnings

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from disent.data.base import GroundTruthData
from disent.data.on_device import DeviceGrid


class BatchStream(IterableDataset):
    """Yields batch `start`, `start + 1`, ... forever: (batch_size, C, H, W) float32 tensors, or with
    `factors_only` the batches' (batch_size, K) int64 factors (the device renders them: on_device.py)."""

    def __init__(
        self,
        dataset: GroundTruthData,
        batch_size: int,
        seed: int,
        start: int = 0,
        factors_only: bool = False,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.start = start
        self.factors_only = factors_only

    def batch(self, i: int) -> torch.Tensor:
        """Batch number `i` of the stream."""
        rng = np.random.default_rng([self.seed, i])
        if self.factors_only:  # the factors GroundTruthData.sample draws first from the same rng
            return torch.from_numpy(self.dataset.sample_factors(self.batch_size, rng))
        return torch.from_numpy(self.dataset.sample_observations(self.batch_size, rng))

    def __iter__(self):
        worker = get_worker_info()
        i, step = (
            (self.start, 1) if worker is None else (self.start + worker.id, worker.num_workers)
        )
        while True:
            yield self.batch(i)
            i += step


class GroundTruthDataModule(L.LightningDataModule):
    """Training batches of uniformly sampled observations; no validation set (metrics sample their
    own).

    `batches_served` counts the batches the Trainer's training loop has taken (counted in
    `on_before_batch_transfer`, which the Trainer calls once per training batch). It is saved in
    checkpoints through `state_dict`, and `train_dataloader()` starts the stream there, so a resumed
    run sees exactly the batches the uninterrupted run would have seen. Iterating the loader by hand
    does not count; set `batches_served` yourself if you need to.

    `on_device`: the loader yields factors, and `on_after_batch_transfer` looks their images up in the
    grid kept on the training device (disent.data.on_device): the same batches, without rendering
    them on the CPU.
    """

    def __init__(
        self,
        dataset: GroundTruthData,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        on_device: bool = False,
    ):
        super().__init__()
        if batch_size < 1 or num_workers < 0 or seed < 0:
            raise ValueError(
                f"need batch_size >= 1, num_workers >= 0 and seed >= 0, "
                f"got {batch_size}, {num_workers}, {seed}"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.on_device = on_device
        if on_device:
            DeviceGrid.check(dataset)  # before training starts
        self.grid: DeviceGrid | None = None  # built on the first batch, on that batch's device
        self.batches_served = 0

    def train_dataloader(self) -> DataLoader:
        stream = BatchStream(
            self.dataset,
            self.batch_size,
            self.seed,
            start=self.batches_served,
            factors_only=self.on_device,
        )
        return DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def on_before_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> torch.Tensor:
        if self.trainer is None or self.trainer.training:
            self.batches_served += 1
        return batch

    def on_after_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> torch.Tensor:
        if not self.on_device:
            return batch
        if self.grid is None or self.grid.device != batch.device:
            self.grid = DeviceGrid(self.dataset, batch.device)
        return self.grid(batch)  # (..., K) factors -> (..., C, H, W) images

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "batches_served": self.batches_served,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume the stream after `state_dict["batches_served"]` batches.

        With another seed or batch size the stream differs from the checkpoint's; that is allowed
        (e.g. on purpose), but said out loud.
        """
        for key in ("seed", "batch_size"):
            if key in state_dict and state_dict[key] != getattr(self, key):
                warnings.warn(
                    f"the checkpoint's data stream had {key}={state_dict[key]}, this datamodule "
                    f"has {key}={getattr(self, key)}: the resumed stream is a different one",
                    stacklevel=2,
                )
        self.batches_served = int(state_dict["batches_served"])


class StackedBatchStream(IterableDataset):
    """Batch i of K streams at once, (K, batch_size, C, H, W): member k's is its own stream's batch i."""

    def __init__(
        self,
        dataset: GroundTruthData,
        batch_size: int,
        seeds: list[int],
        start: int = 0,
        factors_only: bool = False,
    ):
        self.streams = [BatchStream(dataset, batch_size, seed, 0, factors_only) for seed in seeds]
        self.start = start

    def __iter__(self):
        worker = get_worker_info()
        i, step = (
            (self.start, 1) if worker is None else (self.start + worker.id, worker.num_workers)
        )
        while True:
            yield torch.stack([stream.batch(i) for stream in self.streams])
            i += step


class StackedDataModule(GroundTruthDataModule):
    """The data streams of K stacked runs (one seed each), served together as (K, B, C, H, W) batches."""

    def __init__(
        self,
        dataset: GroundTruthData,
        batch_size: int,
        seeds: list[int],
        num_workers: int = 0,
        on_device: bool = False,
    ):
        super().__init__(dataset, batch_size, num_workers, seeds[0], on_device)
        self.seeds = list(seeds)

    def train_dataloader(self) -> DataLoader:
        stream = StackedBatchStream(
            self.dataset, self.batch_size, self.seeds, self.batches_served, self.on_device
        )
        return DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def state_dict(self) -> dict:
        return {**super().state_dict(), "seeds": self.seeds}
