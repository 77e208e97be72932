"""``main.py train``: dry runs, option checks, and a SIGKILLed run resumed to the same state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.training.checkpoints import list_checkpoints, load_checkpoint
from models.training.runs import RunFolder

ROOT = Path(__file__).resolve().parent.parent.parent
TINY = [
    "--preset",
    "tiny",
    "--resolution",
    "8",
    "--batch",
    "4",
    "--channel-base",
    "64",
    "--channel-max",
    "16",
    "--w-dim",
    "16",
    "--mapping-layers",
    "2",
    "--threads",
    "1",
    "--tick-seconds",
    "0",
    "--samples",
    "4",
    "--sample-minutes",
    "0",
    "--device",
    "cpu",
]


def make_images(folder: Path, count: int = 12) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def cli(
    *args: str, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or os.environ.copy(),
        check=False,
        **kwargs,
    )


def trainer_state(path: Path) -> dict[str, torch.Tensor]:
    record = load_checkpoint(path)
    out = {}
    for part in ("G", "D", "G_ema"):
        out.update({f"{part}.{k}": v for k, v in record["trainer"][part].items()})
    for part in ("G_opt", "D_opt"):
        for index, state in record["trainer"][part]["state"].items():
            out.update({f"{part}.{index}.{k}": v for k, v in state.items()})
    out["pl_mean"] = record["trainer"]["pl_mean"]
    out["rng"] = record["rng"]["ranks"][0]["cpu"]
    return out


def test_dry_run_prints_the_resolved_config(tmp_path: Path) -> None:
    data = make_images(tmp_path / "data")
    done = cli(
        "train",
        "stylegan2",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--kimg",
        "0.4",
        *TINY,
        "--dry-run",
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    config = json.loads(text[text.index("{") :])
    assert config["preset"] == "tiny" and config["resolution"] == 8 and config["w_dim"] == 16
    assert "steps: 100" in text
    assert not (tmp_path / "run").exists()


def test_bad_options_fail_with_one_line(tmp_path: Path) -> None:
    done = cli("train", "stylegan2", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "--data is required" in done.stderr
    done = cli(
        "train",
        "stylegan2",
        "--data",
        str(tmp_path / "nothing"),
        "--out",
        str(tmp_path / "run"),
        *TINY,
    )
    assert done.returncode == 2 and "no such folder" in done.stderr
    done = cli("train", "classifier", "--data", str(tmp_path), "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "labels" in done.stderr


def test_resume_refuses_changed_settings_and_other_tasks(tmp_path: Path) -> None:
    data = make_images(tmp_path / "data")
    run_dir = tmp_path / "run"
    done = cli(
        "train", "stylegan2", "--data", str(data), "--out", str(run_dir), "--kimg", "0.008", *TINY
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and (run_dir / "model.safetensors").is_file()
    done = cli("train", "stylegan2", "--resume", str(run_dir), "--lr", "0.5")
    assert done.returncode == 2 and "cannot change when resuming: lr" in done.stderr
    done = cli("train", "classifier", "--resume", str(run_dir))
    assert done.returncode == 2 and "is a stylegan2 run" in done.stderr
    done = cli("train", "stylegan2", "--resume", str(run_dir), "--kimg", "0.016", "--threads", "1")
    assert done.returncode == 0, done.stderr
    assert RunFolder(run_dir).read_status()["step"] == 4


def test_sigkilled_run_resumes_to_the_same_state_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = make_images(tmp_path / "data")
    common = ["--data", str(data), "--kimg", "0.096", *TINY]  # 24 steps
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    straight = cli("train", "stylegan2", "--out", str(tmp_path / "straight"), *common, env=env)
    assert straight.returncode == 0, straight.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "train",
            "stylegan2",
            "--out",
            str(killed_dir),
            *common,
            "--checkpoint-minutes",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            saved = list_checkpoints(killed_dir / "checkpoints")
            if saved and saved[-1][0] >= 6:
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = RunFolder(killed_dir).read_status()["step"]
    assert 6 <= killed_at < 24
    assert RunFolder(killed_dir).read_status()["state"] == "running"  # it never got to say more

    resumed = cli("train", "stylegan2", "--resume", str(killed_dir), "--threads", "1", env=env)
    assert resumed.returncode == 0, resumed.stderr
    status = RunFolder(killed_dir).read_status()
    assert status["state"] == "finished" and status["step"] == 24

    a = trainer_state(tmp_path / "straight" / "checkpoints" / "ckpt-00000024.pt")
    b = trainer_state(killed_dir / "checkpoints" / "ckpt-00000024.pt")
    assert a.keys() == b.keys()
    assert [key for key in a if not torch.equal(a[key], b[key])] == []
    steps = [r["step"] for r in RunFolder(killed_dir).read_metrics()[0]]
    assert steps == list(range(1, 25))  # lines past the restored checkpoint were dropped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_processes_train_and_resume(tmp_path: Path) -> None:
    data = make_images(tmp_path / "data", count=16)
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*args: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            str(ROOT / "main.py"),
            "train",
            "stylegan2",
            *args,
        ]
        return subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=600
        )

    done = torchrun("--data", str(data), "--out", str(run_dir), "--kimg", "0.032", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    status = RunFolder(run_dir).read_status()
    assert status["state"] == "finished" and status["step"] == 8
    record = load_checkpoint(run_dir / "checkpoints" / "ckpt-00000008.pt")
    assert record["world_size"] == 2 and len(record["rng"]["ranks"]) == 2
    # The two processes drew different latents: their RNG streams differ.
    assert not torch.equal(record["rng"]["ranks"][0]["cpu"], record["rng"]["ranks"][1]["cpu"])
    assert done.stdout.count("finished 8 steps") == 1  # only rank 0 reports

    done = torchrun("--resume", str(run_dir), "--kimg", "0.064", "--threads", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert RunFolder(run_dir).read_status()["step"] == 16
    from models import load_generator

    assert load_generator(run_dir / "model.safetensors", device="cpu").resolution == 8


def test_classifier_and_encoder_run_from_the_cli(tmp_path: Path, tiny_generator) -> None:
    data = make_images(tmp_path / "data")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "filename,smile,age\n" + "".join(f"{i}.png,{i % 2},{20 + i}\n" for i in range(12))
    )
    done = cli(
        "train",
        "classifier",
        "--data",
        str(data),
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "cls"),
        "--resolution",
        "8",
        "--input-size",
        "8",
        "--width",
        "4",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    from models.classifier import load_classifier

    classifier = load_classifier(tmp_path / "cls" / "classifier.safetensors")
    assert classifier.attributes == ["smile", "age"] and classifier.binary == [True, False]

    from models import save_generator

    model = save_generator(tiny_generator(resolution=8, w_dim=16), tmp_path / "m.safetensors")
    done = cli(
        "train",
        "encoder",
        "--model",
        str(model),
        "--out",
        str(tmp_path / "enc"),
        "--kimg",
        "0.032",
        "--batch",
        "8",
        "--input-size",
        "8",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--install",
    )
    assert done.returncode == 0, done.stderr
    from models.encoder import encoder_path_for, load_encoder

    assert load_encoder(encoder_path_for(model)).num_ws == 4  # 8 px: 2 * log2(8) - 2


def test_directions_run_from_the_cli(tmp_path: Path, tiny_generator) -> None:
    from editors.direction_files import default_directions_path, load_directions
    from models import save_generator
    from models.classifier import AttributeClassifier, save_classifier

    generator = tiny_generator(resolution=8, w_dim=16)
    model = save_generator(generator, tmp_path / "m.safetensors")
    torch.manual_seed(0)
    classifier = AttributeClassifier(["shade"], [False], input_size=8, width=4, num_stages=1)
    labeler_file = save_classifier(classifier.eval(), tmp_path / "shade.safetensors")
    run_dir = tmp_path / "dirs"
    done = cli(
        "train",
        "directions",
        "--model",
        str(model),
        "--labeler",
        "classifier",
        "--classifier",
        str(labeler_file),
        "--samples",
        "48",
        "--batch",
        "16",
        "--out",
        str(run_dir),
        "--install",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    directions = load_directions(run_dir / "directions.json")
    assert [d.name for d in directions] == ["shade"]
    assert directions.fingerprint == generator.fingerprint()
    assert load_directions(default_directions_path(model)).names == directions.names
    run = RunFolder(run_dir)
    assert run.read_status()["state"] == "finished" and run.read_config()[0] == "directions"
    assert any(key.endswith("/shade") for key in run.read_metrics()[0][-1])
    done = cli("train", "directions", "--resume", str(run_dir))
    assert done.returncode == 2 and "cannot be resumed" in done.stderr


def test_progan_runs_from_the_cli(tmp_path: Path) -> None:
    data = make_images(tmp_path / "data")
    done = cli(
        "train",
        "progan",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "pg"),
        "--resolution",
        "8",
        "--latent-size",
        "16",
        "--feature-base",
        "64",
        "--feature-max",
        "16",
        "--batch",
        "4",
        "--phase-kimg",
        "0.008",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    from models import load_generator

    assert load_generator(tmp_path / "pg" / "model.safetensors", device="cpu").resolution == 8
