"""``main.py train TASK``: train StyleGAN2, ProGAN, an attribute classifier, an encoder, or
fit attribute directions, into a run folder that the GUI's Runs window can follow.

Every option maps to one field of the task's frozen config (``models/training/config.py``); the
wizard builds the same config and starts this command with ``--config FILE``. ``--resume RUN_DIR``
continues a run from its newest checkpoint (only the length, device and timing may change), and
``--dry-run`` prints the resolved config without training. Runs also work under
``torchrun --nproc_per_node N main.py train ...`` (gloo on CPUs, NCCL on GPUs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editors.cli.common import progress_bar
from editors.training_tasks import TRAINING_TASKS, training_task
from models.jobs import Cancelled, OnStep, ShouldStop
from models.training.config import (
    AUGMENT_MODES,
    DEFAULT_PRESET,
    STYLEGAN2_PRESETS,
    StyleGAN2Config,
)
from models.training.runs import RunFolder, default_runs_root, make_run_name

EXIT_CANCELLED = 130
# Fields that may differ when a run is resumed: its length, where it runs, and logging cadence.
RESUMABLE_CHANGES = frozenset(
    {
        "kimg",
        "real_kimg",
        "epochs",
        "device",
        "threads",
        "checkpoint_minutes",
        "keep_checkpoints",
        "sample_minutes",
        "tick_seconds",
    }
)


@dataclass(frozen=True, slots=True)
class Option:
    """One command-line option bound to a config field."""

    flag: str
    field: str
    type: Callable[[str], Any] | None  # None = a switch (store_true) or --x/--no-x (bool_pair)
    help: str
    choices: tuple[str, ...] | None = None
    bool_pair: bool = False  # --flag / --no-flag


def _csv_tuple(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


DEVICE_OPTIONS = (
    Option("--device", "device", str, "cpu, cuda or cuda:N (default: CUDA if present)"),
    Option("--threads", "threads", int, "CPU threads for torch (default: torch's choice)"),
)
COMMON_OPTIONS = (
    Option("--seed", "seed", int, "seed of weights, latents, augmentation and data order"),
    *DEVICE_OPTIONS,
    Option("--checkpoint-minutes", "checkpoint_minutes", float, "write a checkpoint this often"),
    Option("--keep-checkpoints", "keep_checkpoints", int, "recent checkpoints kept"),
    Option("--tick-seconds", "tick_seconds", float, "write a metrics line this often"),
    Option("--name", "name", str, "display name of the trained model"),
)
SAMPLE_MINUTES = Option(
    "--sample-minutes", "sample_minutes", float, "write a sample grid this often"
)
IMAGE_OPTIONS = (
    Option("--data", "data", str, "folder or .zip of images (any size and mode)"),
    Option("--align", "align_faces", None, "align faces FFHQ-style while caching (dlib)"),
    Option("--mirror", "mirror", None, "random horizontal flips", bool_pair=True),
)
TASK_OPTIONS: dict[str, tuple[Option, ...]] = {
    "stylegan2": (
        *IMAGE_OPTIONS,
        Option("--preset", "preset", str, "capacity preset", tuple(STYLEGAN2_PRESETS)),
        Option("--resolution", "resolution", int, "training size in pixels (power of two)"),
        Option("--kimg", "kimg", float, "length: thousands of real images shown"),
        Option("--batch", "batch_size", int, "images per step (all processes)"),
        Option("--lr", "lr", float, "Adam learning rate"),
        Option("--gamma", "r1_gamma", float, "R1 weight (0 = auto from resolution and batch)"),
        Option("--pl-weight", "pl_weight", float, "path-length regularisation weight (0 = off)"),
        Option("--mixing", "style_mixing", float, "style-mixing probability"),
        Option("--ema-kimg", "ema_kimg", float, "EMA half-life in thousands of images"),
        Option("--augment", "augment", str, "discriminator augmentation", AUGMENT_MODES),
        Option("--ada-target", "ada_target", float, "ADA target for r_t"),
        Option("--ada-kimg", "ada_kimg", float, "ADA speed: kimg for p to move by 1"),
        Option("--augment-p", "augment_p", float, "initial (ADA) augmentation probability"),
        Option("--diffaugment", "diffaugment_policy", str, "DiffAugment policy"),
        Option("--channel-base", "channel_base", int, "width: C(r) = min(base / r, max)"),
        Option("--channel-max", "channel_max", int, "largest feature-map count"),
        Option("--w-dim", "w_dim", int, "latent size"),
        Option("--mapping-layers", "mapping_layers", int, "mapping network depth"),
        Option(
            "--mixed-precision",
            "mixed_precision",
            None,
            "bf16 autocast of the main passes (CUDA, bf16 CPUs)",
            bool_pair=True,
        ),
        Option(
            "--channels-last", "channels_last", None, "NHWC memory format for D", bool_pair=True
        ),
        Option("--finetune", "init_from", str, "start from this model (and its D when it has one)"),
        SAMPLE_MINUTES,
        Option("--samples", "num_samples", int, "images in the sample grid"),
        Option("--fp16-export", "export_fp16", None, "store the trained model in float16"),
        Option(
            "--alpha-mask",
            "alpha_mask",
            None,
            "hide transparent pixels from D (e.g. the padding of tight face crops)",
        ),
    ),
    "progan": (
        *IMAGE_OPTIONS,
        Option("--resolution", "resolution", int, "final size in pixels (power of two)"),
        Option(
            "--phase-kimg", "phase_kimg", float, "thousands of images per fade-in / stable phase"
        ),
        Option("--batch", "batch_size", int, "images per step"),
        Option("--lr", "lr", float, "Adam learning rate"),
        Option("--latent-size", "latent_size", int, "z size"),
        Option("--feature-base", "feature_base", int, "width: C(r) = min(base / r, max)"),
        Option("--feature-max", "feature_max", int, "largest feature-map count"),
        SAMPLE_MINUTES,
    ),
    "classifier": (
        *IMAGE_OPTIONS,
        Option("--labels", "labels", str, "CSV: a file-name column and attribute columns"),
        Option(
            "--attributes",
            "attributes",
            _csv_tuple,
            "columns to learn, comma-separated (default: all numeric)",
        ),
        Option("--file-column", "file_column", str, "CSV column with file names (default: guess)"),
        Option("--group-column", "group_column", str, "split by this column (e.g. identity)"),
        Option("--group-file", "group_file", str, "CSV holding the group column"),
        Option("--skip-rows-with", "skip_rows_with", str, "drop rows where this column is set"),
        Option("--val-fraction", "validation_fraction", float, "share held out for validation"),
        Option("--resolution", "resolution", int, "cache size in pixels"),
        Option("--input-size", "input_size", int, "network input size"),
        Option("--width", "width", int, "channels of the first stage"),
        Option("--epochs", "epochs", float, "passes over the training split"),
        Option("--batch", "batch_size", int, "images per step"),
        Option("--lr", "lr", float, "AdamW learning rate"),
    ),
    "directions": (
        Option("--model", "model", str, "generator whose latents are sampled"),
        Option("--labeler", "labeler", str, "where labels come from", ("landmarks", "classifier")),
        Option(
            "--classifier", "classifier", str, "attribute-classifier file (--labeler classifier)"
        ),
        Option(
            "--attributes",
            "attributes",
            _csv_tuple,
            "attributes to fit, comma-separated (default: all)",
        ),
        Option("--samples", "num_samples", int, "latents to sample, render and label"),
        Option("--first-seed", "first_seed", int, "samples use seeds from here on"),
        Option("--truncation", "truncation_psi", float, "truncation of the samples"),
        Option(
            "--layers",
            "layers",
            str,
            "style rows the edits move",
            ("all", "coarse", "middle", "fine"),
        ),
        Option("--batch", "batch_size", int, "samples rendered per pass"),
        Option("--install", "install", None, "also save beside the model (where the editor looks)"),
    ),
    "encoder": (
        Option("--model", "model", str, "generator file the encoder inverts"),
        Option("--data", "data", str, "optional folder/zip of real photos (refinement stage)"),
        Option("--align", "align_faces", None, "align the real photos (dlib)"),
        Option("--kimg", "kimg", float, "thousands of generated training pairs"),
        Option("--real-kimg", "real_kimg", float, "thousands of real photos for refinement"),
        Option("--batch", "batch_size", int, "images per step"),
        Option("--lr", "lr", float, "Adam learning rate"),
        Option("--input-size", "input_size", int, "encoder input size"),
        Option("--truncation", "truncation_psi", float, "truncation of the training latents"),
        Option("--install", "install", None, "copy the encoder beside the model for projection"),
        SAMPLE_MINUTES,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command and its tasks."""
    parser = subparsers.add_parser(
        "train",
        help="train a GAN, classifier or encoder, or fit directions",
        description=(
            "Train into a run folder (config.json, metrics.jsonl, samples/, checkpoints/). "
            "Ctrl-C stops after the current step with a checkpoint; --resume continues."
        ),
    )
    tasks = parser.add_subparsers(dest="task", title="tasks", metavar="TASK", required=True)
    for task in TRAINING_TASKS.values():
        sub = tasks.add_parser(task.name, help=task.help, description=task.help)
        _add_run_arguments(sub)
        shared = COMMON_OPTIONS if task.uses_run_loop else DEVICE_OPTIONS
        options = (*TASK_OPTIONS[task.name], *shared)
        for option in options:
            _add_option(sub, option)
        sub.set_defaults(run=run, options=options)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="run folder (default: a new folder under the runs root)"
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue this run from its newest checkpoint"
    )
    parser.add_argument("--config", metavar="JSON", help="read the settings from this JSON file")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _add_option(parser: argparse.ArgumentParser, option: Option) -> None:
    common: dict[str, Any] = {"dest": option.field, "default": None, "help": option.help}
    if option.bool_pair:
        parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, **common)
    elif option.type is None:
        parser.add_argument(option.flag, action="store_const", const=True, **common)
    else:
        parser.add_argument(
            option.flag,
            type=option.type,
            choices=option.choices,
            metavar=option.flag[2:].upper().replace("-", "_"),
            **common,
        )


# Integer settings with a range beyond which a run cannot be meant (sizes in pixels, widths,
# latent sizes, counts): checked before a config is built, so that e.g. --w-dim 0 or
# --resolution 1048576 fails at once with the option's name instead of deep in training.
INT_RANGES: dict[str, tuple[int, int]] = {
    "resolution": (8, 2048),
    "input_size": (8, 2048),
    "w_dim": (1, 8192),
    "latent_size": (1, 8192),
    "mapping_layers": (1, 64),
    "channel_base": (1, 1 << 24),
    "channel_max": (1, 8192),
    "feature_base": (1, 1 << 24),
    "feature_max": (1, 8192),
    "width": (1, 8192),
    "batch_size": (1, 65536),
    "num_samples": (0, 10_000_000),  # 0: no sample grid (classifiers)
    "threads": (0, 1024),
    "keep_checkpoints": (1, 1_000_000),
}
# Lengths in thousands of images / epochs: positive and finite (at most a billion images).
LENGTHS = ("kimg", "real_kimg", "phase_kimg", "epochs")


def check_values(values: dict[str, Any], flags: dict[str, str] | None = None) -> None:
    """Refuse non-finite numbers and out-of-range sizes in config values.

    ``flags`` maps fields to the command-line options that set them, for the message.

    Raises:
        ValueError: the first offending value, e.g. "--w-dim must be in 1..8192, got 0".
    """
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        name = (flags or {}).get(key, key)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        if key in INT_RANGES and isinstance(value, int):
            low, high = INT_RANGES[key]
            if not low <= value <= high:
                raise ValueError(f"{name} must be in {low}..{high}, got {value}")
        if key in LENGTHS and isinstance(value, int | float) and not 0 <= value <= 1e6:
            raise ValueError(f"{name} must be between 0 and 1000000, got {value}")


def given_fields(args: argparse.Namespace, options: tuple[Option, ...]) -> dict[str, Any]:
    """Config fields set on the command line (options left out are None)."""
    return {o.field: getattr(args, o.field) for o in options if getattr(args, o.field) is not None}


def build_config(task: str, args: argparse.Namespace) -> tuple[Any, Path, bool]:
    """(config, run folder, resume?) from the command line.

    Raises:
        ValueError: missing required options, or options that cannot change on resume.
        FileNotFoundError: ``--resume`` names a folder without a run.
    """
    config_type = training_task(task).config_type
    fields = given_fields(args, args.options)
    check_values(fields, {o.field: o.flag for o in args.options})
    if args.resume:
        run = RunFolder(args.resume)
        saved_task, saved = run.read_config()
        if saved_task != task:
            raise ValueError(
                f"{run.path} is a {saved_task} run, not {task}: use `train {saved_task} --resume`"
            )
        frozen = sorted(
            key
            for key, value in fields.items()
            if key not in RESUMABLE_CHANGES and saved.get(key) != value
        )
        if frozen:
            raise ValueError(
                f"these settings cannot change when resuming: {', '.join(frozen)} "
                f"(only {', '.join(sorted(RESUMABLE_CHANGES & set(saved)))})"
            )
        return config_type.from_dict({**saved, **fields}), run.path, True
    if args.config:
        text = Path(args.config).read_text(encoding="utf-8")
        data = json.loads(text)
        data = data.get("config", data) if isinstance(data, dict) else data
        if isinstance(data, dict):
            check_values(data)
        config = config_type.from_dict({**data, **fields})
    elif task == "stylegan2":
        if "data" not in fields:
            raise ValueError("--data is required (a folder or .zip of images)")
        preset = fields.pop("preset", DEFAULT_PRESET)
        config = StyleGAN2Config.from_preset(preset, **fields)
    else:
        try:
            config = config_type.from_dict(fields)
        except ValueError as exc:
            raise ValueError(f"{exc} (see `main.py train {task} --help`)") from exc
    if task == "stylegan2" and config.init_from:
        config = _finetune_config(config)
    check_values(dataclasses.asdict(config))
    out = (
        Path(args.out) if args.out else default_runs_root() / make_run_name(task, _describe(config))
    )
    return config, out, False


def _finetune_config(config: StyleGAN2Config) -> StyleGAN2Config:
    """Take the resolution from the model being fine-tuned."""
    from models import load_generator

    generator = load_generator(config.init_from, device="cpu")
    if generator.resolution != config.resolution:
        return config.replace(resolution=generator.resolution)
    return config


def _describe(config: Any) -> str:
    source = getattr(config, "data", "") or getattr(config, "model", "")
    return Path(source).stem if source else ""


@contextlib.contextmanager
def _callbacks(description: str) -> Iterator[tuple[OnStep | None, ShouldStop | None]]:
    """A progress bar on the main process; nothing on the other torchrun processes."""
    if int(os.environ.get("RANK", "0")) > 0:
        yield None, None
        return
    with progress_bar(description) as callbacks:
        yield callbacks


def run(args: argparse.Namespace) -> int:
    """Build the config, then train (or print it for ``--dry-run``)."""
    task = args.task
    config, out, resume = build_config(task, args)
    if args.dry_run:
        print(f"task: {task}")
        print(f"run folder: {out}" + (" (resume)" if resume else ""))
        total = getattr(config, "total_steps", None)
        if total is not None:
            print(f"steps: {total}")
        print(config.to_json())
        return 0
    try:
        with _callbacks(f"train {task}") as (on_step, should_stop):
            summary = training_task(task).run(
                config, out, resume=resume, on_step=on_step, should_stop=should_stop
            )
    except Cancelled as exc:
        summary = exc.partial
        if summary is not None and hasattr(summary, "step"):
            print(
                f"stopped at step {summary.step}/{summary.total_steps}; "
                f"checkpoint {summary.checkpoint}",
                file=sys.stderr,
            )
            if summary.artifact:
                print(f"model so far: {summary.artifact}", file=sys.stderr)
            print(
                f"resume with: {sys.executable} main.py train {task} --resume {summary.run_dir}",
                file=sys.stderr,
            )
        else:
            print("stopped before training started", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        from models.training.distributed import shutdown_distributed

        shutdown_distributed()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"finished {summary.step} steps ({summary.images_seen} images) in {summary.run_dir}")
        if summary.artifact:
            print(f"wrote {summary.artifact}")
    return 0
