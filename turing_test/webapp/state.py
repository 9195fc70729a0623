"""Typed per-user state of the participant tab and the settings form of the admin tab.

Gradio-free, no I/O: plain dataclasses. `Session` is what the participant tab's gr.State holds
(no API client sees it: gr.State is not part of the API); what the participant's browser keeps
(gr.BrowserState) stays the plain dict `Session.remembered()` makes. `SurveySettings` is the
admin tab's Settings panel, in the order of its components.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass

from .report import rules_json


@dataclass(frozen=True)
class Session:
    """A participant's session (the participant tab's gr.State): who, in which survey, and the
    secret that resumes it."""
    participant: str
    survey: int | None
    secret: str

    def remembered(self) -> dict:
        """What the participant's browser keeps to continue after a restart of the server."""
        return {"survey": self.survey, "secret": self.secret}


def has_session(state) -> bool:
    """Whether a gr.State value is a started session."""
    return isinstance(state, Session) and bool(state.participant)


def has_secret(state) -> bool:
    """Whether a gr.State value is a session with its resume secret."""
    return isinstance(state, Session) and bool(state.secret)


@dataclass(frozen=True)
class SurveySettings:
    """A survey's settings as the admin tab's Settings panel shows them, in its order."""
    exposure_ms: int
    max_trials: int
    n_practice: int
    n_attention: int
    completion_code: str
    completion_url: str
    active: bool
    n_repeats: int
    stop_width: float
    rules_json: str

    @classmethod
    def of(cls, info: dict) -> "SurveySettings":
        """The settings of a survey's info (the store's dict)."""
        return cls(info["exposure_ms"], info["max_trials"], info["n_practice"], info["n_attention"],
                   info["completion_code"], info["completion_url"], info["active"],
                   info["n_repeats"] or 0, info["stop_width"] or 0, rules_json(info))

    def values(self) -> list:
        """The panel's values, one per component."""
        return list(astuple(self))


SETTINGS_FIELDS = len(SurveySettings.__dataclass_fields__)
