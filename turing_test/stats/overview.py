"""Everything at once: summary, the dict of all tables and headline counts that the admin tab and
`python -m turing_test results` show.

Touches only pandas: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import pandas as pd

from .base import PAIR_KINDS, _counted
from .exclusions import ExclusionRules, exclusion_table, participant_table
from .per_model import model_differences, model_stats, pair_model_table
from .rates import image_table, model_table, real_image_table, real_table

def summary(votes: pd.DataFrame, max_attention_failures: int = 0, *,
            rules: ExclusionRules | None = None, n_boot: int = 1000, seed=0) -> dict:
    """All tables at once, plus headline numbers: models, images, real, real_images,
    participants, excluded (ids), n_votes, n_practice_votes, n_participants. With rules, the
    exclusions follow the rules and these are added: exclusions (exclusion_table), model_stats
    and model_differences. pair_models (pair_model_table) is added when there are pair trials."""
    parts = participant_table(votes, max_attention_failures, rules=rules)
    counted = _counted(votes)
    out = {
        "models": model_table(votes, max_attention_failures, rules=rules),
        "images": image_table(votes, max_attention_failures, rules=rules),
        "real": real_table(votes, max_attention_failures, rules=rules),
        "real_images": real_image_table(votes, max_attention_failures, rules=rules),
        "participants": parts,
        "excluded": parts.loc[parts["excluded"], "participant"].tolist() if len(parts) else [],
        "n_votes": int(len(counted)),
        "n_practice_votes": int(len(votes) - len(counted)),
        "n_participants": int(votes["participant"].nunique()) if len(votes) else 0,
    }
    if rules is not None:
        out["exclusions"] = exclusion_table(votes, rules)
        out["model_stats"] = model_stats(votes, rules, n_boot=n_boot, seed=seed)
        out["model_differences"] = model_differences(votes, rules, n_boot=n_boot, seed=seed)
    if len(counted) and counted["kind"].isin(PAIR_KINDS).any():
        out["pair_models"] = pair_model_table(votes, rules, n_boot=n_boot, seed=seed,
                                              max_attention_failures=max_attention_failures)
    return out
