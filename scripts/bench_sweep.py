"""Sweep throughput: β-VAE jobs through Hydra's basic launcher and through `hydra/launcher=stacked` at
several stack sizes, side by side in one run, plus where the stacked step's time goes.

    python scripts/bench_sweep.py                               # stack sizes 8; 300 steps per job
    python scripts/bench_sweep.py --stack-sizes 1,8,32,64       # a GPU: one stack of each size
    python scripts/bench_sweep.py --against HEAD~3              # the sweeps also with that commit's code
    python scripts/bench_sweep.py --metrics fast                # each job also scored with metrics=fast
    python scripts/bench_sweep.py --steps 500 --skip-sweeps     # only the in-process parts
    python scripts/bench_sweep.py --overrides loader.on_device=true compute.compile=true   # a GPU's knobs

Three measurements, all on the study's conv nets at batch 64 on dSprites:
1. multiruns end to end (`disent-train -m`; each job still writes its checkpoint, figures and results.json,
   and is scored with `--metrics`): `--basic-jobs` jobs through the basic launcher, and for each stack size K
   K jobs as one stack (member_calls=auto: vmap on a GPU, a loop on a CPU); models per hour and training
   images per second. `--against REV` runs the same sweeps with REV's code (a git worktree) too;
2. the training step alone, in process: one Lightning β-VAE against a ModelStack of K members, with the
   members called in a loop and with vmap;
3. for the largest K, the stacked forward and backward with torch.func.vmap against grouped convolutions
   (the two ways to run K nets as one call), and a torch.profiler table of the stacked step.
Run it on an idle machine: a second busy process slows torch's threads several-fold.
"""

import argparse
import json
import os
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
from disent.models.base import step_generator
from disent.models.stacked import ModelStack

# disent-train overrides of every job and in-process model (--overrides), e.g. loader.on_device=true
OVERRIDES: list[str] = []
ISSUE_LIMIT = 550.0  # images/s: issue 9's estimate from a 55 GFLOP/s matrix-multiply peak


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of float32 matrix multiplication here: the compute ceiling of the conv nets."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def training_flops_per_image(model, batch: torch.Tensor) -> float:
    """FLOPs of one training step's forward and backward, per image (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.step_terms(batch, model.draws(batch, step_generator(0, 0, batch.device)), 0)[
            "loss"
        ].backward()
    return counter.get_total_flops() / len(batch)


def sweep(
    launcher: str,
    jobs: int,
    steps: int,
    stack_size: int,
    metrics: str,
    out: Path,
    code: Path | None = None,
) -> float:
    """Wall seconds of one `disent-train -m` over `jobs` jobs (β 1, 2, 4, 8 cycling, then seeds) with
    `launcher`, with this checkout's code or that of the checkout `code`."""
    betas = ",".join(str([1, 2, 4, 8][i % 4]) for i in range(min(jobs, 4)))
    seeds = f"range(0,{-(-jobs // 4)})" if jobs > 4 else "0"
    command = [
        sys.executable,
        "-m",
        "disent.train",
        "-m",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={out}",
        f"model.beta={betas}",
        f"seed={seeds}",
        f"trainer.max_steps={steps}",
        f"metrics={metrics}",
        "trainer.enable_progress_bar=false",
        f"checkpoint.every_n_steps={steps}",
        *OVERRIDES,
    ]
    if launcher == "stacked":
        command.append(f"hydra.launcher.stack_size={stack_size}")
    env = {**os.environ, **({"PYTHONPATH": str(code)} if code else {})}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=code or Path.cwd(), env=env)
    wall = time.perf_counter() - start
    statuses = [json.loads(p.read_text())["status"] for p in out.glob("*/results.json")]
    done = len(statuses)
    assert statuses == ["completed"] * done and done >= jobs, statuses
    return wall * jobs / done  # a grid rounded up to whole seeds: the time of `jobs` of its jobs


def sweeps(args, sizes: list[int], code: Path | None, label: str) -> None:
    """Print the basic launcher's and each stack size's models/hour and images/s with `code`'s disent."""
    with tempfile.TemporaryDirectory() as tmp:
        basic = sweep(
            "basic", args.basic_jobs, args.steps, 1, args.metrics, Path(tmp) / "basic", code
        )
        rows = [("basic", args.basic_jobs, basic)]
        for k in sizes:
            rows.append(
                (
                    f"stacked K={k}",
                    k,
                    sweep(
                        "stacked", k, args.steps, k, args.metrics, Path(tmp) / f"stacked{k}", code
                    ),
                )
            )
    basic_rate = args.basic_jobs * 3600 / basic
    for name, jobs, wall in rows:
        rate = jobs * 3600 / wall
        print(
            f"{label:10s} {name:14s} {jobs:3d} jobs {wall:8.1f} s {rate:8.1f} models/hour "
            f"{jobs * args.steps * 64 / wall:9.1f} images/s ({rate / basic_rate:.2f}x basic; end to end)"
        )


class Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = 0.0
        self.end = 0.0

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def fit_rate(
    model: L.LightningModule, data: L.LightningDataModule, steps: int, warmup: int, images: int
) -> float:
    """Images per second over `steps` timed training steps."""
    timer = Timer(warmup)
    L.Trainer(
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        max_epochs=-1,
        precision=load_config(OVERRIDES).trainer.precision,
    ).fit(model, datamodule=data)
    return steps * images / (timer.end - timer.start)


def members(k: int) -> tuple:
    configs = [load_config([f"model.beta={1 + i}", f"seed={i}", *OVERRIDES]) for i in range(k)]
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
        self.k = k
        self.latent = latent

        def conv(cin, cout, transpose=False):
            layer = nn.ConvTranspose2d if transpose else nn.Conv2d
            return layer(k * cin, k * cout, 4, stride=2, padding=1, groups=k)

        self.encoder = nn.Sequential(
            conv(1, 32),
            nn.ReLU(),
            conv(32, 32),
            nn.ReLU(),
            conv(32, 64),
            nn.ReLU(),
            conv(64, 64),
            nn.ReLU(),
        )
        self.enc_fc = nn.Parameter(torch.randn(k, 1024, hidden) * 0.03)
        self.enc_head = nn.Parameter(torch.randn(k, hidden, 2 * latent) * 0.06)
        self.dec_fc1 = nn.Parameter(torch.randn(k, latent, hidden) * 0.3)
        self.dec_fc2 = nn.Parameter(torch.randn(k, hidden, 1024) * 0.06)
        self.decoder = nn.Sequential(
            conv(64, 64, True),
            nn.ReLU(),
            conv(64, 32, True),
            nn.ReLU(),
            conv(32, 32, True),
            nn.ReLU(),
            conv(32, 1, True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]  # x (K, B, 1, 64, 64)
        h = self.encoder(x.transpose(0, 1).reshape(b, k, 64, 64))  # (B, K*64, 4, 4)
        h = h.reshape(b, k, 1024).transpose(0, 1)  # (K, B, 1024)
        mu, logvar = (torch.relu(h @ self.enc_fc) @ self.enc_head).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        h = torch.relu(torch.relu(z @ self.dec_fc1) @ self.dec_fc2)  # (K, B, 1024)
        logits = self.decoder(h.transpose(0, 1).reshape(b, k * 64, 4, 4))  # (B, K, 64, 64)
        recon = nn.functional.binary_cross_entropy_with_logits(
            logits.transpose(0, 1), x[:, :, 0], reduction="sum"
        )
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
    parser.add_argument("--stack-sizes", default="8", help="comma-separated stack sizes K")
    parser.add_argument("--basic-jobs", type=int, default=8, help="jobs through the basic launcher")
    parser.add_argument(
        "--timed-steps", type=int, default=60, help="timed steps of the in-process comparisons"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    parser.add_argument(
        "--metrics", default="none", help="the sweep jobs' metric set (conf/metrics/)"
    )
    parser.add_argument(
        "--skip-sweeps", action="store_true", help="only the in-process measurements"
    )
    parser.add_argument(
        "--against", metavar="REV", help="also run the sweeps with this git revision's code"
    )
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help="disent-train overrides of every job and in-process model (e.g. loader.on_device=true)",
    )
    args = parser.parse_args()
    OVERRIDES.extend(args.overrides)
    sizes = [int(k) for k in args.stack_sizes.split(",")]
    job = load_config(OVERRIDES)  # what every disent-train job (the sweeps below) sets for itself
    keep_freed_memory(job.malloc.trim_threshold_mb, job.malloc.mmap_threshold_mb)
    torch.set_float32_matmul_precision(job.compute.float32_matmul_precision)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; β-VAE jobs of {args.steps} "
        f"steps, batch 64, metrics={args.metrics}, stack sizes {sizes}, overrides {OVERRIDES}"
    )

    if not args.skip_sweeps:
        sweeps(args, sizes, None, "this code")
        if args.against:
            with tempfile.TemporaryDirectory() as tmp:
                worktree = Path(tmp) / "against"
                subprocess.run(
                    ["git", "worktree", "add", "--detach", str(worktree), args.against],
                    check=True,
                    capture_output=True,
                )
                try:
                    sweeps(args, sizes, worktree, args.against[:10])
                finally:
                    subprocess.run(
                        ["git", "worktree", "remove", "--force", str(worktree)], check=True
                    )

    warmup = args.warmup
    dataset, configs, built = members(1)
    peak = matmul_peak() if device == "cpu" else float("nan")
    sample = torch.from_numpy(dataset.sample_observations(64, np.random.default_rng(0)))
    flops = training_flops_per_image(built[0], sample)
    limit = peak / flops
    print(
        f"matmul peak {peak / 1e9:.0f} GFLOP/s; a training step costs {flops / 1e6:.0f} MFLOP per image -> a limit "
        f"of {limit:.0f} images/s (issue 9 assumed {ISSUE_LIMIT:.0f})"
    )
    on_device = configs[0].loader.on_device
    single = fit_rate(
        built[0],
        GroundTruthDataModule(dataset, 64, seed=0, on_device=on_device),
        args.timed_steps,
        warmup,
        64,
    )
    print(
        f"training step alone: one β-VAE {single:7.1f} images/s ({100 * single / limit:.0f}% of the limit)"
    )
    for k in sizes:
        for vectorized in (False, True):
            dataset, configs, built = members(k)
            stacked = ModelStack(built, final_loss_window=1, vectorize=vectorized)
            rate = fit_rate(
                stacked,
                StackedDataModule(dataset, 64, [c.seed for c in configs], on_device=on_device),
                args.timed_steps,
                warmup,
                64 * k,
            )
            print(
                f"  a stack of {k}, members called {'with vmap' if vectorized else 'in a loop'}: {rate:9.1f} "
                f"images/s ({rate / single:.2f}x; {100 * rate / limit:.0f}% of the limit)"
            )

    k = sizes[-1]
    batch = torch.stack(
        [
            torch.from_numpy(dataset.sample_observations(64, np.random.default_rng(i)))
            for i in range(k)
        ]
    ).to(device)  # (K, 64, 1, 64, 64)
    stacked = ModelStack(members(k)[2], final_loss_window=1).to(device)  # vmap
    vmap_rate = step_rate(
        lambda x: torch.stack([t["loss"] for t in stacked.calls(x)("step_terms")]).sum(),
        list(stacked.parameters()),
        batch,
        args.timed_steps // 2,
    )
    grouped = GroupedConvVAE(k).to(device)
    grouped_rate = step_rate(grouped, list(grouped.parameters()), batch, args.timed_steps // 2)
    print(
        f"K={k} nets as one: vmap {vmap_rate:7.1f} images/s, grouped convolutions {grouped_rate:7.1f} images/s "
        f"(forward + backward + Adam, no Lightning)"
    )

    from torch.profiler import ProfilerActivity, profile

    from disent.stack import vectorize

    stacked = ModelStack(members(k)[2], final_loss_window=1, vectorize=vectorize("auto")).to(device)
    print(
        f"profile of the stacked step (K={k}, member_calls=auto: {'vmap' if stacked.vectorize else 'a loop'}), "
        f"top rows by self time:"
    )
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(5):
            stacked.zero_grad()
            torch.stack([t["loss"] for t in stacked.calls(batch)("step_terms")]).sum().backward()
    print(prof.key_averages().table(sort_by=f"self_{device}_time_total", row_limit=12))


if __name__ == "__main__":
    main()
