"""Train > New… and Train > Runs: the wizard starts real training processes and follows them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QPushButton, QRadioButton, QWizard

from app.dialogs.runs import RunsDialog
from app.training_runs import TrainingRun, list_runs
from app.wizards.train_wizard import TrainWizard


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
            folder / f"p{i:02d}.png"
        )
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("LATENTSTUDIO_RUNS_DIR", str(root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the training processes share 2 cores with pytest
    return root


@pytest.fixture
def started_runs():
    """Every TrainingRun a test starts; any still running is killed at teardown."""
    runs: list[TrainingRun] = []
    yield runs
    for run in runs:
        run.stop_watching()
        if run.is_active:
            run.kill()


def choose_task(wizard: TrainWizard, task: str) -> None:
    wizard.findChild(QRadioButton, f"task:{task}").setChecked(True)
    wizard.next()


def fill_data(qtbot, wizard: TrainWizard, folder: Path | None) -> None:
    page = wizard.data_page
    if folder is not None:
        page.data_edit.setText(str(folder))
        page.scan()
        qtbot.waitUntil(lambda: page.preview is not None, timeout=20000)


def test_stylegan2_from_the_wizard_pause_resume_stop_and_open(
    qtbot, make_main_window, photos: Path, runs_root: Path, started_runs: list, tmp_path: Path
) -> None:
    window = make_main_window()
    window.actions_by_name["trainNew"].trigger()
    wizard = window.findChild(TrainWizard, "trainWizard")
    assert wizard is not None
    wizard.run_started.connect(started_runs.append)

    choose_task(wizard, "stylegan2")
    assert wizard.currentPage() is wizard.data_page
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()  # no photos yet
    fill_data(qtbot, wizard, photos)
    page = wizard.data_page
    assert page.count_label.text().startswith(
        "13 images"
    )  # the broken file is counted, skipped later
    assert not page.thumbnails.pixmap().isNull()
    assert wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    wizard.next()

    settings = wizard.settings_page
    settings.preset_combo.setCurrentText("tiny")
    settings.resolution_combo.setCurrentIndex(settings.resolution_combo.findData(32))
    settings.length_spin.setValue(20.0)  # long enough to pause and resume; the test stops it
    settings.device_combo.setCurrentIndex(settings.device_combo.findData("cpu"))
    qtbot.waitUntil(lambda: settings.images_per_s is not None, timeout=60000)
    assert "images/s on this machine" in settings.estimate_label.text()
    settings.out_edit.setText(str(runs_root / "wizard-run"))
    config = wizard.config()
    assert config.preset == "tiny" and config.resolution == 32 and config.kimg == 20.0

    wizard.next()  # the commit page: starts the process
    view = wizard.run_page.view
    training = wizard.run_page.training
    assert training is not None and started_runs == [training]
    request = json.loads((runs_root / "wizard-run" / "request.json").read_text())
    assert request["preset"] == "tiny"

    qtbot.waitUntil(
        lambda: training.status.get("state") == "running" and len(training.metrics) >= 2,
        timeout=120000,
    )
    qtbot.waitUntil(lambda: view.sample.image() is not None, timeout=60000)
    assert view.findChild(QPushButton, "pauseButton").isEnabled()
    assert view.progress.maximum() == config.total_steps

    qtbot.mouseClick(view.findChild(QPushButton, "pauseButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: training.status.get("state") == "paused", timeout=60000)
    paused_at = training.status["step"]
    assert view.findChild(QPushButton, "resumeButton").isEnabled()
    qtbot.mouseClick(view.findChild(QPushButton, "resumeButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: training.status.get("state") == "running" and training.status["step"] > paused_at,
        timeout=60000,
    )

    screenshot = tmp_path / "run_page.png"
    wizard.grab().save(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    assert view.plot.getPlotItem().listDataItems()  # loss curves are drawn

    qtbot.mouseClick(view.findChild(QPushButton, "stopButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not training.is_active, timeout=120000)
    assert training.status["state"] == "stopped"
    open_button = view.findChild(QPushButton, "openInEditorButton")
    assert open_button.isEnabled()
    with qtbot.waitSignal(window.session.frame_ready, timeout=30000):
        qtbot.mouseClick(open_button, Qt.MouseButton.LeftButton)
    assert window.session.generator.resolution == 32
    wizard.close()


def _labels(folder: Path) -> Path:
    path = folder.parent / "labels.csv"
    rows = ["filename,smile,age,person"] + [
        f"p{i:02d}.png,{i % 2},{20 + i},{i // 2}" for i in range(12)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("task", ["progan", "classifier", "encoder", "directions"])
def test_other_jobs_run_from_the_wizard(
    qtbot,
    make_main_window,
    tiny_generator,
    photos: Path,
    runs_root: Path,
    started_runs: list,
    tmp_path: Path,
    task: str,
) -> None:
    from models import save_generator
    from models.classifier import AttributeClassifier, save_classifier

    model = save_generator(tiny_generator(resolution=16, w_dim=32), tmp_path / "tiny.safetensors")
    window = make_main_window()
    wizard = TrainWizard(window.jobs, model, window)
    qtbot.addWidget(wizard)
    wizard.run_started.connect(started_runs.append)
    wizard.show()
    choose_task(wizard, task)
    page = wizard.data_page
    assert page.model_edit.text() == str(model)
    if task in ("progan", "classifier"):
        fill_data(qtbot, wizard, photos)
    if task == "classifier":
        page.labels_edit.setText(str(_labels(photos)))
        page.labels_edit.editingFinished.emit()
        assert [page.columns_list.item(i).text() for i in range(page.columns_list.count())] == [
            "smile",
            "age",
            "person",
        ]
        page.group_combo.setCurrentIndex(page.group_combo.findData("person"))
        assert page.chosen_columns() == ("smile", "age")
    if task == "directions":
        classifier = AttributeClassifier(["shade"], [False], input_size=16, width=4, num_stages=1)
        page.labeler_combo.setCurrentIndex(page.labeler_combo.findData("classifier"))
        page.findChild(QLineEdit, "classifierEdit").setText(
            str(save_classifier(classifier, tmp_path / "c.safetensors"))
        )
    assert wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    wizard.next()

    settings = wizard.settings_page
    settings.resolution_combo.setCurrentIndex(settings.resolution_combo.findData(32))
    settings.length_spin.setValue({"progan": 0.1, "classifier": 1.0, "encoder": 0.1}.get(task, 1.0))
    settings.samples_spin.setValue(32)
    settings.device_combo.setCurrentIndex(settings.device_combo.findData("cpu"))
    settings.out_edit.setText(str(runs_root / task))
    wizard.next()
    training = wizard.run_page.training
    assert training is not None
    qtbot.waitUntil(lambda: not training.is_active, timeout=180000)
    assert training.status.get("state") == "finished", training.console_tail()
    artifact = Path(training.status["artifact"])
    assert artifact.is_file()
    assert wizard.run_page.view.findChild(QPushButton, "openInEditorButton").isEnabled()
    if task == "classifier":
        from models.classifier import load_classifier

        assert load_classifier(artifact).metrics["split"] == "by person"
    wizard.close()


def click_run(qtbot, dialog: RunsDialog, path: Path) -> None:
    """Click the table row of the run in ``path``, as a user selects it."""
    row = next(i for i, info in enumerate(dialog.runs) if info.path == path)
    rect = dialog.table.visualRect(dialog.table.model().index(row, 0))
    qtbot.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dialog.selected_run() is not None and dialog.selected_run().path == path


def test_runs_window_lists_runs_and_resumes_an_interrupted_one(
    qtbot, make_main_window, photos: Path, runs_root: Path, started_runs: list
) -> None:
    from models.training.config import StyleGAN2Config
    from models.training.runs import RunFolder, write_json_atomic
    from models.training.stylegan2 import train_stylegan2

    config = StyleGAN2Config.from_preset(
        "tiny",
        str(photos),
        resolution=8,
        batch_size=4,
        kimg=0.016,
        channel_base=64,
        channel_max=16,
        w_dim=16,
        device="cpu",
        threads=1,
    )
    train_stylegan2(config, runs_root / "done")
    interrupted = RunFolder(runs_root / "crashed")
    train_stylegan2(config.replace(kimg=0.008), interrupted.path)
    interrupted.write_config("stylegan2", config.to_dict())  # asked for 4 steps, then "crashed"
    status = {**interrupted.read_status(), "state": "running", "pid": _dead_pid()}
    write_json_atomic(interrupted.status_path, status)

    window = make_main_window()
    window.actions_by_name["trainRuns"].trigger()
    dialog = window.findChild(RunsDialog, "runsDialog")
    qtbot.waitUntil(lambda: len(dialog.runs) == 2, timeout=10000)
    states = {info.name: info.state for info in dialog.runs}
    assert states == {"done": "finished", "crashed": "interrupted"}
    assert [info.name for info in list_runs(runs_root)] == [info.name for info in dialog.runs]

    click_run(qtbot, dialog, runs_root / "crashed")
    resume = dialog.findChild(QPushButton, "resumeRunButton")
    assert resume.isEnabled()
    qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
    training = dialog.view.training
    started_runs.append(training)
    qtbot.waitUntil(lambda: not training.is_active, timeout=120000)
    assert training.status["state"] == "finished" and training.status["step"] == 4

    click_run(qtbot, dialog, runs_root / "done")
    qtbot.waitUntil(lambda: dialog.view.open_button.isEnabled(), timeout=10000)
    assert "Finished" in dialog.view.state_label.text()
    dialog.close()


def _dead_pid() -> int:
    """The pid of a process that has already exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
