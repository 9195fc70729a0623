"""What the store hands out and takes in: TrialView (the participant's next screen), NewStimulus
(a stimulus to save), the survey dict, and WriterBusy.

May touch: nothing. Plain data built from rows the caller has read; no session, no SQL, no I/O.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import survey
from .models import Survey, as_utc, new_id

SETTINGS = ("exposure_ms", "max_trials", "n_practice", "n_attention", "completion_code",
            "completion_url", "n_repeats", "stop_width")


class WriterBusy(Exception):
    """Store.write(wait=False) found the writer lock taken."""


@dataclass
class TrialView:
    """What the participant sees next: an image (stimulus_id, token) or the end screen."""
    participant_id: str
    survey_id: int
    position: int  # 0-based, in the whole sequence (practice included)
    n_trials: int
    n_practice: int
    exposure_ms: int
    stimulus_id: str | None = None  # None at the end
    token: str | None = None
    practice: bool = False
    feedback: str = ""  # after a practice trial
    finished: bool = False
    end_message: str = ""
    duplicate: bool = False  # the request repeated a vote already counted: nothing written
    resumed: bool = False
    resume_secret: str | None = None  # from start(): what the participant's browser keeps
    paradigm: str = "single"
    partner_id: str | None = None  # pair trials: the real photo shown beside stimulus_id
    real_on_left: bool | None = None  # pair trials: the side of the real photo

    @property
    def progress(self) -> str:
        if self.finished:
            return "**Done**"
        return survey.progress_text(self.position, self.n_practice, self.n_trials)


@dataclass
class NewStimulus:
    source: str
    kind: str
    image: bytes
    width: int
    height: int
    model: str | None = None
    practice: bool = False
    id: str = field(default_factory=new_id)
    twin_of: str | None = None  # a repeat of that stimulus (same image)
    psnr: float | None = None  # generated: against the real version
    de2000: float | None = None
    colorfulness: float | None = None


def survey_dict(sv: Survey) -> dict:
    """A Survey row as the dict the store's callers get (settings, rules, paradigm)."""
    try:
        rules = json.loads(sv.exclusion_rules) if sv.exclusion_rules else {}
    except ValueError:
        rules = {}
    return dict(id=sv.id, name=sv.name, active=bool(sv.active), is_demo=bool(sv.is_demo),
                image_size=sv.image_size, created_at=as_utc(sv.created_at),
                exclusion_rules=rules, paradigm=sv.paradigm or "single",
                **{k: getattr(sv, k) for k in SETTINGS})
