"""Training throughput: the project's Lightning training step against a bare PyTorch loop.

The bare loop trains the study's conv encoder/decoder as a β-VAE (same loss, Adam, batch size and
data sampler) with nothing else; then disent's training step runs for each model asked for, in the
same process, one after the other. The first `--warmup` steps of each are not timed.

    python scripts/bench_train.py                              # β-VAE on dSprites, 200 timed steps each
    python scripts/bench_train.py --steps 500 model.beta=4
    python scripts/bench_train.py --models beta_vae annealed_vae dip_vae_i dip_vae_ii beta_tcvae factor_vae infogan
"""

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from disent.config import load_config
from disent.data import build_dataset
from disent.data.datamodule import GroundTruthDataModule
from disent.models import build_model
from disent.models.regularizers import gaussian_kl
from disent.models.vae import reconstruction_loss
from disent.nets import build_encoder_decoder


class StepTimer(L.Callback):
    """Wall time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = None
        self.end = None

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def bench_project(cfg, steps: int, warmup: int) -> tuple[float, float, float]:
    """(images/s, mean loss of the first 20 steps, of the last 20) of `disent-train`'s model and
    trainer (logging to CSV, no checkpoints)."""
    L.seed_everything(cfg.seed, verbose=False)
    dataset = build_dataset(cfg.dataset)
    datamodule = GroundTruthDataModule(
        dataset, batch_size=cfg.loader.batch_size, num_workers=0, seed=cfg.seed
    )
    model = build_model(cfg, dataset.observation_shape, len(dataset))
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as tmp:
        from lightning.pytorch.loggers import CSVLogger

        trainer = L.Trainer(
            max_steps=warmup + steps,
            accelerator=cfg.trainer.accelerator,
            devices=1,
            logger=CSVLogger(tmp, name="", version=""),
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            default_root_dir=Path(tmp),
        )
        trainer.fit(model, datamodule=datamodule)
    trace = np.array(model.loss_trace)
    return (
        steps * cfg.loader.batch_size / (timer.end - timer.start),
        trace[:20].mean(),
        trace[-20:].mean(),
    )


def bench_bare(cfg, steps: int, warmup: int) -> float:
    """Images/s of a plain PyTorch loop: same nets, loss, Adam and data sampler; nothing else."""
    torch.manual_seed(cfg.seed)
    dataset = build_dataset(cfg.dataset)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder, decoder = build_encoder_decoder(
        cfg.model.net,
        dataset.observation_shape,
        cfg.model.latent_dim,
        hidden_dim=cfg.model.hidden_dim,
    )
    encoder, decoder = encoder.to(device), decoder.to(device)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.model.optimizer.lr)
    rng = np.random.default_rng(cfg.seed)
    beta = cfg.model.beta
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        x = torch.from_numpy(dataset.sample_observations(cfg.loader.batch_size, rng)).to(device)
        mu, logvar = encoder(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = gaussian_kl(mu, logvar).sum(1).mean()
        loss = reconstruction_loss(decoder(z), x, cfg.model.reconstruction) + beta * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    loss.item()  # wait for the device
    return steps * cfg.loader.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200, help="timed steps per contender")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument(
        "--models", nargs="*", default=["beta_vae"], help="models to time (model=<name>)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for disent-train")
    args = parser.parse_args()
    reference = load_config(["model=beta_vae", *args.overrides])
    print(
        f"dataset={reference.dataset.name} batch={reference.loader.batch_size} torch threads="
        f"{torch.get_num_threads()} device={'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    bare = bench_bare(reference, args.steps, args.warmup)
    print(f"{'bare PyTorch β-VAE loop':28s} {bare:8.1f} images/s")
    for name in args.models:
        project, first, last = bench_project(
            load_config([f"model={name}", *args.overrides]), args.steps, args.warmup
        )
        print(
            f"{'disent ' + name:28s} {project:8.1f} images/s   ratio to the bare β-VAE loop {project / bare:6.3f}"
            f"   loss {first:10.2f} -> {last:10.2f} (first/last 20 steps)",
            flush=True,
        )


if __name__ == "__main__":
    main()
