"""Train wizard for a newcomer: a typed path enables Next at once; too few photos are called out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QRadioButton, QWizard

from app.wizards.train_pages import ENOUGH_IMAGES
from app.wizards.train_wizard import TrainWizard


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
            folder / f"p{i:02d}.png"
        )
    return folder


def test_typed_path_enables_next_without_leaving_the_field(
    qtbot, make_main_window, tmp_path: Path
) -> None:
    folder = _photos(tmp_path / "photos", 12)
    window = make_main_window()
    window.actions_by_name["trainNew"].trigger()
    wizard = window.findChild(TrainWizard, "trainWizard")
    wizard.findChild(QRadioButton, "task:stylegan2").setChecked(True)
    wizard.next()
    page = wizard.data_page
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    assert not next_button.isEnabled()
    page.data_edit.setFocus()
    qtbot.keyClicks(page.data_edit, str(folder))  # typed, focus stays in the field
    assert page.data_edit.hasFocus() or not wizard.isActiveWindow()
    qtbot.waitUntil(next_button.isEnabled, timeout=20000)
    assert page.count_label.text().startswith("12 images")
    # 12 photos are far too few for a GAN: the page says so and how many are needed.
    warning = page.few_label.text()
    assert page.few_label.isVisibleTo(page) and "Only 12 images" in warning and "5,000" in warning
    # The same folder for a classifier names the classifier's need instead.
    wizard.back()
    wizard.findChild(QRadioButton, "task:classifier").setChecked(True)
    wizard.next()
    assert "classifier needs about 1,000" in page.few_label.text()
    wizard.close()


def test_enough_images_means_no_warning() -> None:
    from app.wizards.train_pages import too_few_images_warning

    for task, (needed, _advice) in ENOUGH_IMAGES.items():
        assert too_few_images_warning(task, needed) == ""
        assert str(needed - 1) in too_few_images_warning(task, needed - 1).replace(",", "")
