"""The panel shown before any model is loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.theme import icon


class WelcomePanel(QWidget):
    """Explains what to do first and offers to open a model (or the built-in demo)."""

    open_model_requested = Signal()
    get_models_requested = Signal()
    open_demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        from models import default_model_path

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
        self.problem = QLabel("")
        self.problem.setObjectName("welcomeProblem")
        self.problem.setWordWrap(True)
        self.problem.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.setStyleSheet("color: #f08080")
        self.problem.hide()
        self.demo_button = QPushButton(icon("mdi6.face-woman-outline"), "Open the built-in demo")
        self.demo_button.setObjectName("openDemoButton")
        self.demo_button.setToolTip("A small 64 px face model that ships with the app")
        self.demo_button.clicked.connect(self.open_demo_requested)
        self.demo_button.setVisible(default_model_path() is not None)
        self.open_button = QPushButton(icon("mdi6.folder-open"), "Open model…")
        self.open_button.setObjectName("openModelButton")
        self.open_button.clicked.connect(self.open_model_requested)
        self.get_models_button = QPushButton(icon("mdi6.download"), "Get models…")
        self.get_models_button.setObjectName("getModelsButton")
        self.get_models_button.setToolTip("Download public StyleGAN2 and ProGAN checkpoints")
        self.get_models_button.clicked.connect(self.get_models_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 20, 40, 20)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addSpacing(8)
        layout.addWidget(self.problem)
        layout.addSpacing(8)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.demo_button, self.open_button, self.get_models_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(2)

    def show_problem(self, text: str) -> None:
        """Say why the last model could not be opened (whole message, wrapped)."""
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
