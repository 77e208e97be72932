"""The side-effect readout beside a slider: where the change landed, identity drift, other measures.

StyleSpace's attribute-dependency idea: moving one attribute should leave the others alone. The
readout renders the face with and without the edit in a background job and shows the share of
the pixel change inside the attribute's intended region, dlib's identity drift and the largest
changes of the other landmark measures, with a green / amber cue. One widget serves the
Attributes tab (the slider last moved) and the Style space tool (the whole edit).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.workers import Job
from editors.locality import EditReadout, measure_side_effects
from editors.state import EditState

if TYPE_CHECKING:
    from app.errors import ErrorReport
    from app.session import Session
    from app.workers import JobRegistry
    from models.generator import Generator

DEBOUNCE_MS = 300  # a pause this long after the last change starts a measurement
GOOD_SHARE = 0.6  # the cue is green at or above this share inside the intended region...
GOOD_DRIFT = 0.12  # ...and at or below this identity drift (issue 15's locality goals)
GOOD_COLOR = "#3fb950"
WARN_COLOR = "#d29922"
SHOWN_MEASURES = 3

# Landmark measure -> (label, a change worth noticing, format). Changes are ranked by how many
# "noticeable" steps they make, so degrees and eye-distance ratios compare fairly.
MEASURES: dict[str, tuple[str, float, str]] = {
    "mouth_open": ("mouth open", 0.05, "{:+.2f} ed"),
    "smile": ("smile", 0.05, "{:+.2f} ed"),
    "eye_open": ("eye open", 0.03, "{:+.2f} EAR"),
    "yaw": ("yaw", 3.0, "{:+.1f}°"),
    "pitch": ("pitch", 3.0, "{:+.1f}°"),
}
# Words in a slider's name that make a measure its own purpose rather than a side effect.
_OWN_WORDS: dict[str, tuple[str, ...]] = {
    "mouth_open": ("mouth",),
    "smile": ("smil",),
    "eye_open": ("eye open", "eyes open", "blink"),
    "yaw": ("yaw",),
    "pitch": ("pitch",),
}

EXPLANATION = (
    "<b>Side effects</b> of {what}, measured on this face (dlib's 68 landmarks):<br>"
    "• <i>share</i>: the part of the pixel change inside the region {what} should act in "
    "({region});<br>"
    "• <i>drift</i>: identity distance to the face without {cause} (dlib descriptors; "
    "below 0.6 = same person, ≤ {drift} barely noticeable);<br>"
    "• <i>also</i>: the largest changes of other face measures: mouth openness and smile in eye "
    "distances (ed), eye openness as eye aspect ratio (EAR), head yaw and pitch in degrees.<br>"
    "Green: ≥ {share:.0%} inside and drift ≤ {drift}; amber otherwise."
)


def is_contained(readout: EditReadout) -> bool:
    """True when the edit stays in its region and keeps the person (the green cue)."""
    drift = readout.identity_drift
    # Judged at the shown precision, so "drift 0.12" never comes with an amber cue.
    shown_drift = round(drift, 2) if math.isfinite(drift) else math.inf
    return readout.share_inside >= GOOD_SHARE and shown_drift <= GOOD_DRIFT


def _own_measures(what: str) -> set[str]:
    lowered = what.lower()
    return {key for key, words in _OWN_WORDS.items() if any(word in lowered for word in words)}


def measure_phrase(key: str, change: float) -> str:
    """One measure's change with its unit, e.g. "yaw +2.3°"."""
    label, _, form = MEASURES.get(key, (key.replace("_", " "), 1.0, "{:+.2f}"))
    return f"{label} {form.format(change)}"


def largest_changes(readout: EditReadout, what: str, count: int = SHOWN_MEASURES) -> list[str]:
    """The ``count`` largest changes of measures other than ``what``'s own purpose, as phrases."""
    own = _own_measures(what)
    changes = [
        (abs(value) / MEASURES.get(key, ("", 1.0, ""))[1], key, value)
        for key, value in readout.measure_changes().items()
        if key not in own and math.isfinite(value)
    ]
    changes.sort(reverse=True)
    return [measure_phrase(key, value) for _, key, value in changes[:count]]


def readout_lines(what: str, readout: EditReadout) -> list[str]:
    """The readout as short lines of rich text."""
    share = readout.share_inside
    share_text = f"{share:.0%} inside the {readout.region}" if math.isfinite(share) else "no change"
    drift = readout.identity_drift
    first = f"<b>{html.escape(what)}</b>: {share_text}"
    first += f" · drift {drift:.2f}" if math.isfinite(drift) else " · drift not measured"
    if not readout.measures_after:
        return [first, "also: the edited face is no longer found"]
    # Non-breaking spaces keep each phrase ("pitch -0.7°") on one line when the label wraps.
    others = [phrase.replace(" ", "&nbsp;") for phrase in largest_changes(readout, what)]
    return [first, "also: " + (", ".join(others) if others else "nothing else measured")]


def readout_details(what: str, readout: EditReadout, whole_edit: bool = False) -> str:
    """Tooltip text: what the numbers mean, then every measure and region.

    ``whole_edit``: the readout compares the unedited face (not the face without one slider).
    """
    cause = "any edit" if whole_edit else "this slider"
    lines = [
        EXPLANATION.format(
            what=html.escape(what),
            region=readout.region,
            cause=cause,
            share=GOOD_SHARE,
            drift=GOOD_DRIFT,
        )
    ]
    changes = readout.measure_changes()
    if changes:
        lines.append("All measures: " + ", ".join(measure_phrase(k, v) for k, v in changes.items()))
    if math.isfinite(readout.mouth_width_change):
        lines.append(f"Mouth width {readout.mouth_width_change:+.3f} ed")
    spread = sorted(readout.region_shares.items(), key=lambda item: -item[1])[:4]
    where = [f"{name} {share:.0%}" for name, share in spread if math.isfinite(share)]
    if where:
        lines.append("Where the change is: " + ", ".join(where))
    return "<br>".join(lines)


class SideEffectReadout(QWidget):
    """A readout label with a "measure automatically" check box and a colour cue.

    ``follow(name)`` makes it measure attribute ``name`` (None: the whole edit) after each
    pause in the changes while the check box is on; ``measure(name)`` measures at once.
    A newer measurement supersedes a running one; nothing is shown while there is no edit.
    """

    def __init__(
        self,
        session: Session,
        jobs: JobRegistry,
        toggle_text: str = "Side effects",
        *,
        hint: str = "",
        off_hint: str | None = None,
        auto_up_to: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """
        Args:
            hint: shown while there is nothing to read out.
            off_hint: shown instead while the check box is off (default: ``hint``).
            auto_up_to: when set, each new model turns the check box on if its resolution is at
                most this many pixels (measuring a large model takes seconds) and off otherwise.
        """
        super().__init__(parent)
        self.session = session
        self.jobs = jobs
        self.hint = hint
        self.off_hint = hint if off_hint is None else off_hint
        self.auto_up_to = auto_up_to
        self.job: Job | None = None
        self.what: str | None = None  # what the shown readout is about
        self.readout: EditReadout | None = None  # the shown readout (None: none shown)
        self.measured_state: EditState | None = None
        self._target: str | None = None
        self._following = False

        self.label = QLabel(hint)
        self.label.setObjectName("sideEffects")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.toggle = QCheckBox(toggle_text)
        self.toggle.setObjectName("sideEffectsCheck")
        self.toggle.setToolTip(
            "Measure side effects after each change (renders the face twice and finds its "
            "landmarks: under a second on small models, seconds at 1024 px)"
        )
        self.toggle.toggled.connect(self._on_toggled)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._on_timer)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.controls.addWidget(self.toggle)
        self.controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.label)
        layout.addLayout(self.controls)
        self._set_cue(None)

        session.state_changed.connect(self._on_state_changed)
        session.generator_changed.connect(self._on_generator_changed)
        if session.generator is not None:
            self._on_generator_changed(session.generator)

    def text(self) -> str:
        """The readout's text as shown (rich text)."""
        return self.label.text()

    # -- what to measure ----------------------------------------------------------------------
    def follow(self, name: str | None) -> None:
        """Read out ``name`` (an attribute; None: the whole edit) from now on, after a pause."""
        if name != self._target or not self._following:
            self.clear()  # the shown readout is about something else
        self._target, self._following = name, True
        if self.toggle.isChecked():
            self._schedule()

    def measure(self, name: str | None = None) -> Job | None:
        """Measure ``name``'s side effects (None: the whole edit) now, in the background."""
        self._target, self._following = name, True
        self.timer.stop()
        generator, state = self.session.generator, self.session.state
        if generator is None or not self._has_something(state):
            self.clear()
            return None
        self._drop_job()
        job = Job(
            "Could not measure the side effects",
            measure_side_effects,
            generator,
            state,
            name,
        )
        job.succeeded.connect(lambda result: self._on_measured(job, state, name, result))
        job.failed.connect(lambda report: self._on_failed(job, report))
        self.job = job
        self.label.setText(f"Measuring {html.escape(name or 'the edit')}…")
        self.label.setToolTip("")
        self._set_cue(None)
        return self.jobs.submit(job)

    def clear(self, text: str | None = None) -> None:
        """Show no readout (``text`` or the hint instead) and drop any pending measurement."""
        self.timer.stop()
        self._drop_job()
        self.what = self.readout = self.measured_state = None
        idle = self.hint if self.toggle.isChecked() else self.off_hint
        self.label.setText(idle if text is None else text)
        self.label.setToolTip("")
        self._set_cue(None)

    def _has_something(self, state: EditState) -> bool:
        if self._target is None:
            return state.has_edits
        directions = state.directions
        return (
            directions is not None
            and self._target in directions
            and state.attribute_amounts.get(self._target, 0.0) != 0.0
        )

    def _drop_job(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.request_stop()  # its answer is ignored; a queued one never starts
        self.job = None

    def _schedule(self) -> None:
        self.timer.start()  # restarts: measure once changes pause

    def _on_timer(self) -> None:
        if self.session.is_dragging:
            self._schedule()  # a slider is still held: measure after its release
            return
        self.measure(self._target)

    # -- session ------------------------------------------------------------------------------
    def _on_state_changed(self, state: EditState) -> None:
        if not self._following:
            return
        if not self._has_something(state):
            self.clear()
        elif self.toggle.isChecked() and state is not self.measured_state:
            self._schedule()

    def _on_generator_changed(self, generator: Generator) -> None:
        self._target, self._following = None, False
        if self.auto_up_to is not None:
            self.toggle.setChecked(getattr(generator, "resolution", 0) <= self.auto_up_to)
        self.clear()

    def _on_toggled(self, checked: bool) -> None:
        if not checked or not self._following:
            self.clear()
        else:
            self._schedule()

    # -- results ------------------------------------------------------------------------------
    def _on_measured(
        self, job: Job, state: EditState, name: str | None, result: tuple[str, Any]
    ) -> None:
        if job is not self.job:
            return  # superseded
        self.job = None
        what, readout = result
        self.what, self.readout, self.measured_state = what, readout, state
        if readout is None:
            self.label.setText(f"{html.escape(what)}: no face found, side effects not measured")
            self.label.setToolTip("dlib finds no face in the picture: nothing to compare")
            self._set_cue(None)
            return
        self.label.setText("<br>".join(readout_lines(what, readout)))
        self.label.setToolTip(readout_details(what, readout, whole_edit=name is None))
        self._set_cue(is_contained(readout))

    def _on_failed(self, job: Job, report: ErrorReport) -> None:
        if job is not self.job:
            return
        self.job = None
        self.label.setText(html.escape(report.message))
        self.label.setToolTip(html.escape(report.title))
        self._set_cue(None)

    def _set_cue(self, good: bool | None) -> None:
        color = "transparent" if good is None else GOOD_COLOR if good else WARN_COLOR
        self.label.setProperty("contained", "" if good is None else "yes" if good else "no")
        self.label.setStyleSheet(
            # Qt draws a lone border-left only after a border style for all sides is set.
            f"QLabel#sideEffects {{ border: 0px solid transparent;"
            f" border-left: 4px solid {color}; padding-left: 6px; }}"
        )
