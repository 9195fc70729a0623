"""Comparing a state dict with a model's: one description of what does not fit, used by every loader.

Standard library only (works on any mapping of tensors).
"""
from __future__ import annotations


def describe_mismatch(own: dict, sd: dict, limit: int | None = 3) -> str | None:
    """None when sd has exactly own's keys and shapes; else 'N missing (e.g. ...), ...'."""
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k}: {tuple(sd[k].shape)} instead of {tuple(own[k].shape)}"
             for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("with the wrong shape", wrong)):
        if items:
            shown = items if limit is None else items[:limit]
            more = "" if len(shown) == len(items) else ", ..."
            parts.append(f"{len(items)} {label} ({'; '.join(shown)}{more})")
    return ", ".join(parts) or None
