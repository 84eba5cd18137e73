"""An offline W&B run holds the losses, metrics, figures and grouping, read back from the files W&B wrote."""

import json
import struct

import pytest

from disent.config import load_config
from disent.train import train

wandb_internal_pb2 = pytest.importorskip("wandb.proto.wandb_internal_pb2")

TINY_METRICS = [*[f"metrics.suite.{m}.num_train=100" for m in ("mig", "sap", "modularity", "unsupervised", "dci")],
                *[f"metrics.suite.{m}.num_test=50" for m in ("sap", "modularity", "dci")],
                "metrics.suite.beta_vae.num_train=20", "metrics.suite.beta_vae.num_eval=10",
                "metrics.suite.factor_vae.num_train=20", "metrics.suite.factor_vae.num_eval=10",
                "metrics.suite.factor_vae.num_variance_estimate=200"]


def read_records(path):
    """The protobuf records of a .wandb file: W&B's log format of 32 KiB blocks, each record split
    into chunks with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    raw, block, pos, parts = path.read_bytes(), 32768, 7, []
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0:
            break
        parts.append(raw[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def test_offline_run_holds_losses_metrics_figures_and_grouping(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = load_config(["logger=wandb", "trainer.max_steps=4", "trainer.log_every_n_steps=1", "model.net=mlp",
                       "model.hidden_dim=32", "model.beta=4", "seed=7", "study_name=my_study",
                       "trainer.enable_progress_bar=false", "metrics=fast", "figures.mi_num_points=300", *TINY_METRICS])
    assert train(cfg, tmp_path / "job")["status"] == "completed"
    (run_dir,) = list((tmp_path / "job" / "wandb").glob("offline-run-*"))
    history, summary, run = set(), set(), None
    for record in read_records(next(run_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history |= {item.key or "/".join(item.nested_key) for item in record.history.item}
        elif kind == "summary":
            summary |= {item.key or "/".join(item.nested_key) for item in record.summary.update}
        elif kind == "run":
            run = record.run
    assert {"train/loss", "train/reconstruction", "train/kl", "train/kl_z0", "metrics/mean/mig",
            "metrics/mean/dci.disentanglement", "metrics/mean/beta_vae.eval_accuracy"} <= history
    assert {"figures/traversals/_type", "figures/latent_heatmaps/_type", "figures/traversals_gif/_type"} <= history
    assert "metrics/mean/sap" in summary
    assert (run.run_group, run.job_type, run.display_name) == ("my_study", "beta_vae", "beta_vae_beta=4_seed=7")
    assert {"beta_vae", "dsprites", "beta=4"} <= set(run.tags)
    media = run_dir / "files" / "media"
    assert any((media / "images" / "figures").glob("traversals_*.png"))
    assert any((media / "videos" / "figures").glob("traversals_gif_*.gif"))
    (table,) = list((media / "table").glob("final_metrics_*.table.json"))
    rows = json.loads(table.read_text())["data"]
    assert ["metrics/mean/mig", pytest.approx(json.loads((tmp_path / "job" / "results.json").read_text())
                                              ["metrics"]["mean"]["mig"])] in rows
