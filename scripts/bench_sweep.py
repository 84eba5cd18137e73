"""Sweep throughput: the same grid of β-VAE jobs through Hydra's basic launcher and through
`hydra/launcher=stacked`, side by side in one run, plus where the stacked step's time goes.

    python scripts/bench_sweep.py                      # 8 jobs (β 1, 2, 4, 8 x seeds 0, 1), 300 steps each
    python scripts/bench_sweep.py --metrics fast       # the same, each job also scored with metrics=fast
    python scripts/bench_sweep.py --steps 500 --stack-size 8 --skip-sweeps   # only the in-process parts

Three measurements, all on the study's conv nets at batch 64 on dSprites:
1. the two multiruns end to end (`disent-train -m`; each job still writes its checkpoint, figures and
   results.json, and is scored with `--metrics`): models per hour and training images per second;
   the stacked launcher runs with its default member_calls=auto (vmap on a GPU, a loop on a CPU);
2. the training step alone, in process: one Lightning β-VAE against one StackedVAE of K members, with
   the members called in a loop and with vmap;
3. the stacked forward and backward with torch.func.vmap against grouped convolutions (the two ways to
   run K nets as one call), and a torch.profiler table of the stacked step as member_calls=auto runs it.
Run it on an idle machine: a second busy process slows torch's threads several-fold.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from disent.config import load_config
from disent.data import build_dataset
from disent.data.datamodule import GroundTruthDataModule, StackedDataModule
from disent.malloc import keep_freed_memory
from disent.models import build_model
from disent.models.stacked import StackedVAE

ISSUE_LIMIT = 550.0  # images/s: issue 9's estimate from a 55 GFLOP/s matrix-multiply peak


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of float32 matrix multiplication here: the compute ceiling of the conv nets."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def training_flops_per_image(model, batch: torch.Tensor) -> float:
    """FLOPs of one training step's forward and backward, per image (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.compute_losses(batch)["loss"].backward()
    return counter.get_total_flops() / len(batch)


def sweep(launcher: str, steps: int, stack_size: int, metrics: str, out: Path) -> float:
    """Wall seconds of one `disent-train -m` over the grid with `launcher`."""
    command = [sys.executable, "-m", "disent.train", "-m", f"hydra/launcher={launcher}", f"hydra.sweep.dir={out}",
               "model.beta=1,2,4,8", "seed=0,1", f"trainer.max_steps={steps}", f"metrics={metrics}",
               "trainer.enable_progress_bar=false", f"checkpoint.every_n_steps={steps}"]
    if launcher == "stacked":
        command.append(f"hydra.launcher.stack_size={stack_size}")
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    statuses = [json.loads(p.read_text())["status"] for p in out.glob("*/results.json")]
    assert statuses == ["completed"] * 8, statuses
    return wall


class Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def fit_rate(model: L.LightningModule, data: L.LightningDataModule, steps: int, warmup: int, images: int) -> float:
    """Images per second over `steps` timed training steps."""
    timer = Timer(warmup)
    L.Trainer(max_steps=warmup + steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[timer], max_epochs=-1).fit(model, datamodule=data)
    return steps * images / (timer.end - timer.start)


def members(k: int) -> tuple:
    configs = [load_config([f"model.beta={1 + i}", f"seed={i}"]) for i in range(k)]
    built = []
    for cfg in configs:
        L.seed_everything(cfg.seed, verbose=False)
        dataset = build_dataset(cfg.dataset)
        built.append(build_model(cfg, dataset.observation_shape, len(dataset)))
    return dataset, configs, built


class GroupedConvVAE(nn.Module):
    """The study's conv encoder/decoder for K members as grouped convolutions and batched matmuls:
    member k owns channel group k. Only for timing against vmap (same shapes and FLOPs)."""

    def __init__(self, k: int, latent: int = 10, hidden: int = 256):
        super().__init__()
        self.k, self.latent = k, latent

        def conv(cin, cout, transpose=False):
            layer = nn.ConvTranspose2d if transpose else nn.Conv2d
            return layer(k * cin, k * cout, 4, stride=2, padding=1, groups=k)

        self.encoder = nn.Sequential(conv(1, 32), nn.ReLU(), conv(32, 32), nn.ReLU(), conv(32, 64), nn.ReLU(),
                                     conv(64, 64), nn.ReLU())
        self.enc_fc = nn.Parameter(torch.randn(k, 1024, hidden) * 0.03)
        self.enc_head = nn.Parameter(torch.randn(k, hidden, 2 * latent) * 0.06)
        self.dec_fc1 = nn.Parameter(torch.randn(k, latent, hidden) * 0.3)
        self.dec_fc2 = nn.Parameter(torch.randn(k, hidden, 1024) * 0.06)
        self.decoder = nn.Sequential(conv(64, 64, True), nn.ReLU(), conv(64, 32, True), nn.ReLU(),
                                     conv(32, 32, True), nn.ReLU(), conv(32, 1, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]                                                       # x (K, B, 1, 64, 64)
        h = self.encoder(x.transpose(0, 1).reshape(b, k, 64, 64))               # (B, K*64, 4, 4)
        h = h.reshape(b, k, 1024).transpose(0, 1)                               # (K, B, 1024)
        mu, logvar = (torch.relu(h @ self.enc_fc) @ self.enc_head).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        h = torch.relu(torch.relu(z @ self.dec_fc1) @ self.dec_fc2)             # (K, B, 1024)
        logits = self.decoder(h.transpose(0, 1).reshape(b, k * 64, 4, 4))     # (B, K, 64, 64)
        recon = nn.functional.binary_cross_entropy_with_logits(logits.transpose(0, 1), x[:, :, 0], reduction="sum")
        return recon / b + 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum() / b


def step_rate(step, params, batch: torch.Tensor, repeats: int) -> float:
    """Images per second of forward + backward + Adam."""
    optimizer = torch.optim.Adam(params, lr=1e-4)
    synchronize = torch.cuda.synchronize if batch.is_cuda else lambda: None
    for i in range(repeats + 3):
        if i == 3:
            synchronize()
            start = time.perf_counter()
        optimizer.zero_grad()
        step(batch).backward()
        optimizer.step()
    synchronize()
    return repeats * batch.shape[0] * batch.shape[1] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps of each sweep job")
    parser.add_argument("--stack-size", type=int, default=8)
    parser.add_argument("--timed-steps", type=int, default=60, help="timed steps of the in-process comparisons")
    parser.add_argument("--metrics", default="none", help="the sweep jobs' metric set (conf/metrics/)")
    parser.add_argument("--skip-sweeps", action="store_true", help="only the in-process measurements")
    args = parser.parse_args()
    malloc = load_config([]).malloc  # what every disent-train job (the sweeps below) sets for itself
    keep_freed_memory(malloc.trim_threshold_mb, malloc.mmap_threshold_mb)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}; 8 β-VAE jobs of {args.steps} steps, batch 64, "
          f"metrics={args.metrics}")

    if not args.skip_sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            walls = {launcher: sweep(launcher, args.steps, args.stack_size, args.metrics, Path(tmp) / launcher)
                     for launcher in ("basic", "stacked")}
        images = 8 * args.steps * 64
        for launcher, wall in walls.items():
            print(f"{launcher:8s} launcher  {wall:8.1f} s   {8 * 3600 / wall:7.1f} models/hour   "
                  f"{images / wall:7.1f} images/s (end to end, incl. start-up, figures, checkpoints, metrics)")
        print(f"stacked / basic: {walls['basic'] / walls['stacked']:.2f}x models per hour")

    k, warmup = args.stack_size, 10
    dataset, configs, built = members(k)
    peak = matmul_peak()
    sample = torch.from_numpy(dataset.sample_observations(64, np.random.default_rng(0)))
    flops = training_flops_per_image(built[0], sample)
    limit = peak / flops
    print(f"matmul peak {peak / 1e9:.0f} GFLOP/s; a training step costs {flops / 1e6:.0f} MFLOP per image -> a limit "
          f"of {limit:.0f} images/s (issue 9 assumed {ISSUE_LIMIT:.0f})")
    single = fit_rate(built[0], GroundTruthDataModule(dataset, 64, seed=0), args.timed_steps, warmup, 64)
    print(f"training step alone: one β-VAE {single:7.1f} images/s ({100 * single / limit:.0f}% of the limit)")
    for vectorized in (False, True):
        dataset, configs, built = members(k)
        stacked = StackedVAE(built, final_loss_window=1, vectorize=vectorized)
        rate = fit_rate(stacked, StackedDataModule(dataset, 64, [c.seed for c in configs]), args.timed_steps,
                        warmup, 64 * k)
        print(f"  a stack of {k}, members called {'with vmap' if vectorized else 'in a loop'}: {rate:7.1f} images/s "
              f"({rate / single:.2f}x; {100 * rate / limit:.0f}% of the limit, {100 * rate / ISSUE_LIMIT:.0f}% of "
              f"issue 9's {ISSUE_LIMIT:.0f})")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch = torch.stack([torch.from_numpy(dataset.sample_observations(64, np.random.default_rng(i)))
                         for i in range(k)]).to(device)                          # (K, 64, 1, 64, 64)
    stacked = StackedVAE(members(k)[2], final_loss_window=1).to(device)  # vmap
    vmap_rate = step_rate(lambda x: torch.stack([t["loss"] for t in stacked.compute_losses(x)]).sum(),
                          list(stacked.parameters()), batch, args.timed_steps // 2)
    grouped = GroupedConvVAE(k).to(device)
    grouped_rate = step_rate(grouped, list(grouped.parameters()), batch, args.timed_steps // 2)
    print(f"K={k} nets as one: vmap {vmap_rate:7.1f} images/s, grouped convolutions {grouped_rate:7.1f} images/s "
          f"(forward + backward + Adam, no Lightning)")

    from torch.profiler import ProfilerActivity, profile

    from disent.stack import vectorize

    stacked = StackedVAE(members(k)[2], final_loss_window=1, vectorize=vectorize("auto")).to(device)
    print(f"profile of the stacked step (K={k}, member_calls=auto: {'vmap' if stacked.vectorize else 'a loop'}), "
          f"top rows by self time:")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(5):
            stacked.zero_grad()
            torch.stack([t["loss"] for t in stacked.compute_losses(batch)]).sum().backward()
    print(prof.key_averages().table(sort_by=f"self_{device}_time_total", row_limit=12))


if __name__ == "__main__":
    main()
