"""Help: a short guide with every shortcut (read from the live actions), and the About box."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMessageBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.shortcuts import shortcut_text

ABOUT_TEXT = (
    "<h3>Latent Studio</h3>"
    "<p>Load StyleGAN2 and ProGAN checkpoints, find photos in latent space and edit them.</p>"
    "<p>The built-in demo model was trained on CelebA and its age slider fitted with UTKFace; "
    "both data sets allow <b>non-commercial research use only</b>, and so does the demo model "
    "(see its model card, resources/models/demo-faces-64.md). Checkpoints you open keep their "
    "own licences.</p>"
)

GUIDE = """
<h3>Getting started</h3>
<ol>
<li><b>Pick a picture:</b> change the <i>Seed</i> (or press <b>Random</b>), or drop a photo on
the canvas to find it in the model (<i>Projection</i> tool).</li>
<li><b>Edit it</b> with the tools on the right: <i>Attributes</i> (smile, age, pose…),
<i>Style mixing</i>, <i>Components</i>, <i>Layers &amp; noise</i>.</li>
<li><b>Step back</b> through <i>History</i> on the left, or with undo and redo.</li>
<li><b>Keep it:</b> save the image, or the whole session, from the File menu; export a video
of a slider sweep.</li>
</ol>
<p>Sliders follow the arrow and Page Up/Down keys once clicked; double-click a slider's value to
type one. Drag the picture to pan when zoomed in.</p>
"""


def shortcuts_table(actions: list[QAction]) -> str:
    """An HTML table of the actions that have shortcuts, in menu order."""
    rows = []
    for action in actions:
        keys = shortcut_text(action)
        if keys:
            text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
            rows.append(
                f"<tr><td><b>{escape(keys)}</b></td><td>{escape(text.rstrip('…'))}</td></tr>"
            )
    return (
        "<h3>Keyboard shortcuts</h3><table cellspacing='0' cellpadding='3'>"
        + "".join(rows)
        + ("</table>")
    )


class HelpDialog(QDialog):
    """The guide and the shortcut table (built from the window's live actions)."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle("Latent Studio — getting started and shortcuts")
        self.browser = QTextBrowser()
        self.browser.setObjectName("helpText")
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(GUIDE + shortcuts_table(actions))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(560, 620)


def show_about_box(parent: QWidget) -> QMessageBox:
    """Help > About: what the app is and the demo model's licence."""
    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle("About Latent Studio")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(ABOUT_TEXT)
    box.open()
    return box
