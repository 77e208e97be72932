"""Train > New…: a wizard that builds a training config and starts the run in its own process.

Pages: task -> data (folder, image count and thumbnails scanned off the GUI thread, label
columns) -> settings (preset, length, a measured time estimate) -> run (live ``RunView``). The
pages fill the same frozen config dataclasses the CLI fills; the run is ``main.py train`` started
detached, so it continues when the wizard closes (Train > Runs shows it again).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from app.dialogs.runs import RunsDialog
from app.wizards.train_pages import DataPage, RunPage, SettingsPage, TaskPage
from app.workers import JobRegistry
from editors.training_tasks import TRAINING_TASKS
from models.training.config import (
    ClassifierConfig,
    DirectionsConfig,
    EncoderConfig,
    ProGANConfig,
    StyleGAN2Config,
)

if TYPE_CHECKING:
    from app.main_window import MainWindow


class TrainWizard(QWizard):
    """Task -> data -> settings -> live run."""

    run_started = Signal(object)  # TrainingRun
    open_requested = Signal(object)  # dict: final status + task + config (see RunView)

    def __init__(
        self, jobs: JobRegistry, model_path: Path | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trainWizard")
        self.setWindowTitle("New training run")
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(
            QWizard.WizardOption.NoCancelButtonOnLastPage, True
        )  # closing never stops a run
        self.task_page = TaskPage()
        self.data_page = DataPage(jobs, model_path)
        self.settings_page = SettingsPage(jobs)
        self.run_page = RunPage()
        for page in (self.task_page, self.data_page, self.settings_page, self.run_page):
            self.addPage(page)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Start training")
        self.settings_page.setCommitPage(True)
        self.run_page.view.open_requested.connect(self.open_requested)
        self.resize(980, 680)

    def task(self) -> str:
        """The chosen task."""
        return self.task_page.task()

    def done(self, result: int) -> None:
        self.settings_page.cancel_estimate()
        super().done(result)

    def config(self) -> Any:
        """The config the pages describe (the same dataclass the CLI builds).

        Raises:
            ValueError: a setting is out of range.
        """
        data, settings, task = self.data_page, self.settings_page, self.task()
        photos = data.data_edit.text().strip()
        device = settings.device_combo.currentData()
        resolution = int(settings.resolution_combo.currentData())
        length = settings.length_spin.value()
        align = data.align_check.isChecked()
        if task == "stylegan2":
            return StyleGAN2Config.from_preset(
                settings.preset_combo.currentData(),
                photos,
                resolution=resolution,
                kimg=length,
                align_faces=align,
                device=device,
                sample_minutes=1.0,
            )
        if task == "progan":
            return ProGANConfig(
                data=photos,
                resolution=resolution,
                phase_kimg=length,
                align_faces=align,
                device=device,
                sample_minutes=1.0,
            )
        if task == "classifier":
            return ClassifierConfig(
                data=photos,
                labels=data.labels_edit.text().strip(),
                attributes=data.chosen_columns(),
                group_column=data.group_combo.currentData() or "",
                resolution=resolution,
                input_size=min(resolution, 128),
                epochs=length,
                align_faces=align,
                device=device,
            )
        model = data.model_edit.text().strip()
        if task == "encoder":
            return EncoderConfig(
                model=model,
                data=photos,
                real_kimg=length / 5 if photos else 0.0,
                kimg=length,
                align_faces=align,
                device=device,
                install=True,
            )
        return DirectionsConfig(
            model=model,
            labeler=data.labeler_combo.currentData(),
            classifier=data.classifier_edit.text().strip(),
            num_samples=settings.samples_spin.value(),
            install=True,
            device=device,
        )


def open_train_wizard(window: MainWindow) -> TrainWizard:
    """Train > New…: show the wizard for ``window`` (results open in that window)."""
    generator = window.session.generator
    model_path = generator.source.path if generator is not None and generator.source else None
    wizard = TrainWizard(window.jobs, model_path, window)
    wizard.open_requested.connect(lambda payload: open_training_result(window, payload))
    wizard.show()
    return wizard


def open_runs_dialog(window: MainWindow) -> RunsDialog:
    """Train > Runs…: the list of runs under the runs root."""
    dialog = RunsDialog(window.jobs, parent=window)
    dialog.open_requested.connect(lambda payload: open_training_result(window, payload))
    dialog.show()
    return dialog


def open_training_result(window: MainWindow, payload: dict[str, Any]) -> None:
    """Open what a run made: a model directly; a classifier, encoder or directions via its model."""
    task = TRAINING_TASKS.get(str(payload.get("task")))
    artifact = payload.get("artifact")
    config = payload.get("config") or {}
    if task is not None and task.artifact == "model" and artifact:
        window.open_model(Path(artifact))
        return
    if task is not None and task.needs_model and config.get("model"):
        window.open_model(Path(config["model"]))
        kind = "encoder" if task.artifact == "encoder" else "attribute directions"
        QMessageBox.information(
            window,
            "Training result",
            f"The {kind} were saved to\n{artifact}\n"
            "and beside the model, where the editor finds them.",
        )
        return
    QMessageBox.information(
        window,
        "Training result",
        f"The classifier was saved to\n{artifact}\n"
        "Use it with 'Fit directions…' in the Attributes tab, or in an 'Attribute directions' run.",
    )
