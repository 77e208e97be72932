"""The panel shown before any model is loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class WelcomePanel(QWidget):
    """Explains what to do first and offers to open a model."""

    open_model_requested = Signal()
    get_models_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        title = QLabel("<h2>Latent Studio</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "Open a StyleGAN2 or ProGAN checkpoint to start: rosinality <code>.pt</code>, "
            "NVIDIA <code>.pkl</code>, pytorch_GAN_zoo <code>.pth</code> or a Latent Studio "
            "<code>.safetensors</code> file.<br>You can also drop a checkpoint onto this window."
        )
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setTextFormat(Qt.TextFormat.RichText)
        self.open_button = QPushButton("Open model…")
        self.open_button.setObjectName("openModelButton")
        self.open_button.clicked.connect(self.open_model_requested)
        self.get_models_button = QPushButton("Get models…")
        self.get_models_button.setObjectName("getModelsButton")
        self.get_models_button.setToolTip("Download public StyleGAN2 and ProGAN checkpoints")
        self.get_models_button.clicked.connect(self.get_models_requested)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(text)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.get_models_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(2)
