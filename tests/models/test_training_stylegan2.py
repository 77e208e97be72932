"""The StyleGAN2 training job: recipe pieces, run folder, exact resume, stop/pause, bad events."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.jobs import Cancelled, Progress
from models.training import checkpoints as checkpoints_module
from models.training import stylegan2 as sg2
from models.training.checkpoints import list_checkpoints, load_checkpoint
from models.training.config import StyleGAN2Config
from models.training.loop import TrainingDiverged
from models.training.runs import RunFolder


def make_faces(folder: Path, count: int = 24, size: int = 12, seed: int = 0) -> Path:
    """Tiny synthetic 'faces': a bright disc on a dark background at random places."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (size * 0.3) ** 2
        rgb = np.where(disc[..., None], rng.integers(150, 255, 3), rng.integers(0, 60, 3)).astype(
            np.uint8
        )
        Image.fromarray(rgb).save(folder / f"face{i:03d}.png")
    return folder


def tiny_config(data: Path, **overrides: object) -> StyleGAN2Config:
    """An 8-px run that exercises every term: R1 and path length every 2 steps, ADA moving fast."""
    fields: dict[str, object] = dict(
        resolution=8,
        batch_size=4,
        kimg=0.024,
        r1_interval=2,
        pl_interval=2,
        augment="ada",
        augment_p=0.3,
        ada_interval=1,
        ada_kimg=0.1,
        num_samples=4,
        checkpoint_minutes=1e6,
        sample_minutes=0,
        tick_seconds=0,
        device="cpu",
        channel_base=64,
        channel_max=16,
        w_dim=16,
        mapping_layers=2,
        mbstd_group=2,
        threads=1,
    )
    fields.update(overrides)
    return StyleGAN2Config.from_preset("tiny", str(data), **fields)


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    return make_faces(tmp_path / "faces")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Jobs set the process's thread count (threads=1 here); put it back for other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def state_tensors(record: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's trainer state and RNG, flattened to dotted keys."""
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        elif isinstance(value, int | float):
            out[prefix] = torch.tensor(value, dtype=torch.float64)

    walk("trainer", record["trainer"])
    walk("rng", record["rng"])
    return out


# ---------------------------------------------------------------------------------------------
# Recipe pieces against naive formulas


def test_losses_match_their_definitions() -> None:
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-3.0, 0.2])
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected_d = np.mean([-math.log(sigmoid(float(r))) for r in real]) + np.mean(
        [-math.log(1 - sigmoid(float(f))) for f in fake]
    )
    assert float(sg2.d_logistic_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    expected_g = np.mean([-math.log(sigmoid(float(f))) for f in fake])
    assert float(sg2.g_nonsaturating_loss(fake)) == pytest.approx(expected_g, rel=1e-6)


def test_lazy_regularisation_rescales_adam(faces: Path) -> None:
    from models.training.distributed import DistContext
    from models.training.images import prepare_images

    config = tiny_config(faces, r1_interval=16, pl_interval=4, lr=0.002)
    trainer = sg2.StyleGAN2Trainer(config, prepare_images(faces, 8), DistContext())
    g_group, d_group = trainer.G_opt.param_groups[0], trainer.D_opt.param_groups[0]
    assert g_group["lr"] == pytest.approx(0.002 * 4 / 5)
    assert g_group["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert d_group["lr"] == pytest.approx(0.002 * 16 / 17)
    assert d_group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))


def test_ema_follows_the_half_life_with_rampup(faces: Path) -> None:
    from models.training.distributed import DistContext
    from models.training.images import prepare_images

    config = tiny_config(faces, ema_kimg=0.1, ema_rampup=0.05)
    trainer = sg2.StyleGAN2Trainer(config, prepare_images(faces, 8), DistContext())
    before = [p.clone() for p in trainer.G_ema.parameters()]
    with torch.no_grad():
        for p in trainer.G.parameters():
            p.add_(1.0)
    trainer._update_ema(images_seen=400)  # rampup: half-life = min(100, 400 * 0.05) = 20 images
    beta = 0.5 ** (4 / 20)
    for old, new, live in zip(
        before, trainer.G_ema.parameters(), trainer.G.parameters(), strict=True
    ):
        torch.testing.assert_close(new, live * (1 - beta) + old * beta)


def test_style_mixing_cuts_ws_in_two(faces: Path) -> None:
    from models.training.distributed import DistContext
    from models.training.images import prepare_images

    trainer = sg2.StyleGAN2Trainer(
        tiny_config(faces, style_mixing=1.0), prepare_images(faces, 8), DistContext()
    )
    _, ws = trainer._generate(3)
    rows_equal_first = [bool(torch.equal(ws[:, 0], ws[:, i])) for i in range(ws.shape[1])]
    cut = rows_equal_first.index(False)
    assert 1 <= cut < ws.shape[1] and not any(rows_equal_first[cut:])
    assert all(torch.equal(ws[:, cut], ws[:, i]) for i in range(cut, ws.shape[1]))


# ---------------------------------------------------------------------------------------------
# The run folder and exact resume


def test_run_writes_config_first_then_metrics_samples_checkpoint_and_model(
    faces: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    seen_config_before_training: list[bool] = []

    def on_step(progress: Progress) -> None:
        if not seen_config_before_training:
            seen_config_before_training.append((run_dir / "config.json").is_file())

    summary = sg2.train_stylegan2(tiny_config(faces), run_dir, on_step=on_step)
    assert seen_config_before_training == [True]
    run = RunFolder(run_dir)
    task, saved = run.read_config()
    assert task == "stylegan2" and StyleGAN2Config.from_dict(saved) == tiny_config(faces)
    records, _ = run.read_metrics()
    assert [r["step"] for r in records] == list(range(1, 7))
    assert records[-1]["images_seen"] == 24 and records[-1]["images_per_s"] > 0
    assert {"loss_D", "loss_G", "augment_p", "score_real"} <= set(records[-1])
    assert all(math.isfinite(r["loss_G"]) for r in records)
    assert run.latest_sample() is not None
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == 6 == summary.step
    assert json.loads((run_dir / "data.json").read_text())["images"] == 24

    from models import load_generator

    model = load_generator(summary.artifact, device="cpu")
    assert model.resolution == 8 and model.provenance["steps"] == 6
    record = load_checkpoint(summary.checkpoint)
    ema = record["trainer"]["G_ema"]
    for key, value in model.state_dict().items():
        if key != "w_avg":
            torch.testing.assert_close(value, ema[key], rtol=0, atol=0)
    assert float(model.w_avg.abs().sum()) > 0  # refreshed on export


def test_resume_after_a_stop_reproduces_the_uninterrupted_run_bitwise(
    faces: Path, tmp_path: Path
) -> None:
    config = tiny_config(faces)
    straight = sg2.train_stylegan2(config, tmp_path / "straight")

    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # checked once before each step

    with pytest.raises(Cancelled) as stopped:
        sg2.train_stylegan2(config, tmp_path / "split", should_stop=stop_after_three)
    partial = stopped.value.partial
    assert partial.state == "stopped" and partial.step == 3 and partial.artifact.is_file()
    assert RunFolder(tmp_path / "split").read_status()["state"] == "stopped"
    resumed = sg2.train_stylegan2(config, tmp_path / "split", resume=True)
    assert resumed.step == straight.step == 6

    a = state_tensors(load_checkpoint(straight.checkpoint))
    b = state_tensors(load_checkpoint(resumed.checkpoint))
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert different == []
    # The augmentation probability really moved, so its state was part of what matched.
    assert float(a["trainer.augment.p"]) != pytest.approx(0.3)
    # Metrics continue without duplicates.
    steps = [r["step"] for r in RunFolder(tmp_path / "split").read_metrics()[0]]
    assert steps == list(range(1, 7))


def test_a_fresh_run_refuses_a_folder_that_holds_one(faces: Path, tmp_path: Path) -> None:
    config = tiny_config(faces, kimg=0.008)
    sg2.train_stylegan2(config, tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a training run"):
        sg2.train_stylegan2(config, tmp_path / "run")


def test_control_file_pause_then_run_then_stop(faces: Path, tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    events: list[str] = []

    def on_step(progress: Progress) -> None:
        if progress.message == "paused":
            events.append(f"paused@{progress.step}")
            assert run.read_status()["state"] == "paused"
            assert list_checkpoints(run.checkpoints_dir)[-1][0] == progress.step  # saved on pause
            run.request("run")
        elif progress.message.startswith("step 2/"):
            run.request("pause")
        elif progress.message.startswith("step 4/"):
            run.request("stop")

    with pytest.raises(Cancelled) as stopped:
        sg2.train_stylegan2(tiny_config(faces), run.path, on_step=on_step)
    assert events == ["paused@2"]
    assert stopped.value.partial.step == 4
    assert run.read_status()["state"] == "stopped"
    # A stale "stop" must not end the resumed run at once.
    assert run.read_control() == "stop"
    assert sg2.train_stylegan2(tiny_config(faces), run.path, resume=True).step == 6


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_loss = sg2.g_nonsaturating_loss

    def poisoned(logits: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return real_loss(logits) * (math.nan if calls["n"] == 4 else 1.0)

    monkeypatch.setattr(sg2, "g_nonsaturating_loss", poisoned)
    run_dir = tmp_path / "run"
    config = tiny_config(faces, checkpoint_minutes=0)  # a checkpoint after every step
    with pytest.raises(TrainingDiverged, match="diverged at step 4: loss_G"):
        sg2.train_stylegan2(config, run_dir)
    steps = [step for step, _ in list_checkpoints(run_dir / "checkpoints")]
    assert steps[-1] == 3
    record = load_checkpoint(run_dir / "checkpoints" / "ckpt-00000003.pt")
    assert all(torch.isfinite(t).all() for t in record["trainer"]["G"].values())
    status = RunFolder(run_dir).read_status()
    assert status["state"] == "failed" and "ckpt-00000003.pt" in status["message"]


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    config = tiny_config(faces, checkpoint_minutes=0)
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj: object, path: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")  # what a full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, path)

    monkeypatch.setattr(checkpoints_module.torch, "save", failing_save)
    with pytest.raises(OSError, match=r"No space left on device.*ckpt-00000002\.pt is intact"):
        sg2.train_stylegan2(config, run_dir)
    folder = run_dir / "checkpoints"
    assert [step for step, _ in list_checkpoints(folder)] == [1, 2]
    assert sorted(p.name for p in folder.iterdir()) == [
        "ckpt-00000001.pt",
        "ckpt-00000002.pt",
    ]  # no temp left
    assert load_checkpoint(folder / "ckpt-00000002.pt")["step"] == 2
    assert RunFolder(run_dir).read_status()["state"] == "failed"
    monkeypatch.setattr(checkpoints_module.torch, "save", real_save)
    assert sg2.train_stylegan2(config, run_dir, resume=True).step == 6


def test_damaged_newest_checkpoint_falls_back_to_the_previous(faces: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    sg2.train_stylegan2(tiny_config(faces, checkpoint_minutes=0, kimg=0.012), run_dir)
    newest = list_checkpoints(run_dir / "checkpoints")[-1][1]
    newest.write_bytes(newest.read_bytes()[:100])
    summary = sg2.train_stylegan2(tiny_config(faces, checkpoint_minutes=0), run_dir, resume=True)
    assert summary.step == 6


def test_finetune_starts_from_the_given_model(faces: Path, tmp_path: Path, tiny_generator) -> None:
    from models import save_generator

    source = tiny_generator(resolution=8, w_dim=16)
    path = save_generator(source, tmp_path / "pretrained.safetensors")
    config = tiny_config(faces, init_from=str(path), kimg=0.004)
    run = RunFolder(tmp_path / "run")

    def stop_before_the_first_step(progress: Progress) -> None:
        if progress.message == "sample":
            run.request("stop")

    with pytest.raises(Cancelled) as stopped:
        sg2.train_stylegan2(config, run.path, on_step=stop_before_the_first_step)
    assert stopped.value.partial.step == 0
    record = load_checkpoint(stopped.value.partial.checkpoint)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(record["trainer"]["G"][key], value, rtol=0, atol=0)


def test_finetune_rejects_a_resolution_mismatch(
    faces: Path, tmp_path: Path, tiny_generator
) -> None:
    from models import save_generator

    path = save_generator(tiny_generator(resolution=16, w_dim=16), tmp_path / "p.safetensors")
    with pytest.raises(ValueError, match="16 px but the run is set to 8 px"):
        sg2.train_stylegan2(tiny_config(faces, init_from=str(path)), tmp_path / "run")
    assert RunFolder(tmp_path / "run").read_status()["state"] == "failed"


def test_config_json_round_trip_rejects_unknown_keys(faces: Path) -> None:
    config = tiny_config(faces)
    assert StyleGAN2Config.from_json(config.to_json()) == config
    data = json.loads(config.to_json())
    data["chanel_base"] = 3
    with pytest.raises(ValueError, match="unknown stylegan2 config keys: chanel_base"):
        StyleGAN2Config.from_dict(data)
    data.pop("chanel_base")
    data["batch_size"] = "16"
    with pytest.raises(ValueError, match="batch_size"):
        StyleGAN2Config.from_dict(data)
    with pytest.raises(ValueError, match="unknown preset"):
        StyleGAN2Config.from_preset("huge", "x")


def test_finetune_uses_the_discriminator_a_rosinality_file_ships(
    faces: Path, tmp_path: Path, tiny_generator
) -> None:
    from models.discriminator import StyleGAN2Discriminator

    generator = tiny_generator(resolution=8, w_dim=16)
    torch.manual_seed(5)
    discriminator = StyleGAN2Discriminator(8, generator.channels)
    path = tmp_path / "pretrained.pt"
    torch.save(
        {
            "g_ema": generator.state_dict(),
            "d": discriminator.state_dict(),
            "latent_avg": generator.w_avg.clone(),
        },
        path,
    )
    run = RunFolder(tmp_path / "run")

    def stop_before_the_first_step(progress: Progress) -> None:
        if progress.message == "sample":
            run.request("stop")

    with pytest.raises(Cancelled) as stopped:
        sg2.train_stylegan2(
            tiny_config(faces, init_from=str(path), mbstd_group=4),
            run.path,
            on_step=stop_before_the_first_step,
        )
    record = load_checkpoint(stopped.value.partial.checkpoint)
    for key, value in discriminator.state_dict().items():
        torch.testing.assert_close(record["trainer"]["D"][key], value, rtol=0, atol=0)
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(record["trainer"]["G"][key], value, rtol=0, atol=0)
