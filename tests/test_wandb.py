"""An offline W&B run holds the losses, metrics, figures and grouping, read back from the files W&B wrote."""

import json
import struct
import time

import pytest

from disent.config import load_config
from disent.run import train

wandb_internal_pb2 = pytest.importorskip("wandb.proto.wandb_internal_pb2")
DecodeError = pytest.importorskip("google.protobuf.message").DecodeError


def _records(raw: bytes, base: int = 7) -> list:
    """Records of W&B's log format: 32 KiB blocks (counted from the end of the 7-byte file header),
    each record split into chunks with a 7-byte header (crc32, length, type: 1 full, 2 first, 3
    middle, 4 last); a block tail shorter than a header is padding."""
    block, pos, parts, records = 32768, 7, [], []
    while pos + 7 <= len(raw):
        left = block - (pos - base) % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if kind == 0:
            break
        parts.append(raw[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            records.append(record)
    return records


def read_records(path, wait_s: float = 20.0) -> list:
    """The protobuf records of a .wandb file, once W&B has written its final `exit` record (its writer
    is a separate process that may still be flushing when wandb.finish returns on a loaded machine).
    """
    deadline = time.monotonic() + wait_s
    while True:
        raw = path.read_bytes()
        assert raw[:4] == b":W&B"
        try:
            records = _records(raw)
            if (
                any(r.WhichOneof("record_type") == "exit" for r in records)
                or time.monotonic() > deadline
            ):
                return records
        except DecodeError:  # a record still being written
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


@pytest.mark.slow
def test_offline_run_holds_losses_metrics_figures_and_grouping(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = load_config(
        [
            "logger=wandb",
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=1",
            "model.net=mlp",
            "model.hidden_dim=32",
            "model.beta=4",
            "seed=7",
            "study_name=my_study",
            "trainer.enable_progress_bar=false",
            "metrics=tiny_all",
            "figures.mi_num_points=300",
        ]
    )
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
    assert {
        "train/loss",
        "train/reconstruction",
        "train/kl",
        "train/kl_z0",
        "metrics/mean/mig",
        "metrics/mean/dci.disentanglement",
        "metrics/mean/beta_vae.eval_accuracy",
    } <= history
    assert {
        "figures/traversals/_type",
        "figures/latent_heatmaps/_type",
        "figures/traversals_gif/_type",
    } <= history
    assert "metrics/mean/sap" in summary
    assert (run.run_group, run.job_type, run.display_name) == (
        "my_study",
        "beta_vae",
        "beta_vae_beta=4_seed=7",
    )
    assert {"beta_vae", "dsprites", "beta=4"} <= set(run.tags)
    media = run_dir / "files" / "media"
    assert any((media / "images" / "figures").glob("traversals_*.png"))
    assert any((media / "videos" / "figures").glob("traversals_gif_*.gif"))
    (table,) = list((media / "table").glob("final_metrics_*.table.json"))
    rows = json.loads(table.read_text())["data"]
    assert [
        "metrics/mean/mig",
        pytest.approx(
            json.loads((tmp_path / "job" / "results.json").read_text())["metrics"]["mean"]["mig"]
        ),
    ] in rows
