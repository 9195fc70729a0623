"""Results of a Turing test from the votes table (pandas).

Input: the DataFrame of :func:`turing_test.export_votes` (one row per vote). Practice votes never
count. Participants who failed more attention checks than allowed are excluded from the headline
figures (per image, per model, real photos) and listed in the participant table. With an
:class:`ExclusionRules` (``rules=``), exclusions also cover inconsistent repeats, constant or
alternating answer patterns and implausibly fast votes (see :func:`exclusion_table`).

- fooling rate of a colorized image or model: the share of its votes that said "real";
- real photos: the share judged real, the calibration every fooling rate must be read against
  (a model that fools 40% of the time when real photos are judged real 70% of the time is far
  from indistinguishable);
- 95% intervals: Wilson score intervals (votes treated as independent), and, in
  :func:`model_stats`, :func:`model_differences` and :func:`pair_model_table`, a two-way cluster
  bootstrap over participants and source photos (:func:`bootstrap_rate`), which also carries the
  spread between raters and between photos. That bootstrap (the "pigeonhole" bootstrap, Owen
  2007) is mildly conservative: with no rater or photo effects at all and one vote per
  (participant, photo) it is about sqrt(3) times as wide as the Wilson interval;
- signal detection (:func:`dprime`): "colorized" is the signal and answering "fake" a "yes";
- every function taking ``rules`` also takes ``max_attention_failures``, used only when rules is
  None (the original attention-check-only exclusion);
- pair paradigm (``kind`` "pair" / "pair_catch", bool ``fooled``): the fooling rate is the share
  of "pair" trials where the real photo was picked as the colorized one (50% = indistinguishable).

Optional columns, treated as missing when absent: ``server_ms`` (server-side time from sending
the image to receiving the vote), ``repeat_of`` (a catch trial repeating the participant's
earlier showing of that stimulus), ``paradigm`` and ``fooled``. A repeat is a consistency check,
not a second vote: repeats never enter the headline figures.

The code, by topic (each submodule says what it computes and what it may touch):
``exclusions`` (ExclusionRules, exclusion_table, flag_votes, participant_table, headline_votes),
``rates`` (wilson_interval and the per image / model / real photo tables), ``bootstrap`` (the
two-way cluster bootstrap, bootstrap_rate), ``per_model`` (dprime, model_stats,
model_differences, mixed_model, pair_model_table), ``metrics`` (image_metric_table,
metric_correlations), ``planning`` (votes_needed, precise_enough), ``overview`` (summary) and
``base`` (the level's quantile and the column readers they share). Every name, private ones
included, is re-exported here: use ``from turing_test import stats; stats.model_table(...)``.
"""
from __future__ import annotations

from .base import PAIR_KINDS, Z95, _col_bool, _col_float, _counted, _in_time_order, _repeat_of, _z
from .bootstrap import _boot_rates, _boot_weights, _percentile_interval, bootstrap_rate
from .exclusions import (EXCLUSION_COLUMNS, ExclusionRules, _as_bool, _as_float, _as_int,
                         _correct, _given_answer, _pattern, _repeat_flags, _word,
                         excluded_participants, exclusion_table, flag_votes, headline_votes,
                         participant_table)
from .metrics import (_IMAGE_COLUMNS, CORRELATION_COLUMNS, METRICS, _resampled_ranks,
                      _weighted_spearman, image_metric_table, metric_correlations)
from .per_model import (DIFFERENCE_COLUMNS, MIXED_COLUMNS, MODEL_STATS_COLUMNS, PAIR_COLUMNS,
                        _model_order, _probit, dprime, mixed_model, model_differences,
                        model_stats, pair_model_table)
from .planning import _wilson_width, precise_enough, votes_needed
from .rates import (_rate_table, image_table, model_table, real_image_table, real_table,
                    wilson_interval)
from .overview import summary

# the public API, then the private helpers that tests and older callers reach as stats._name
__all__ = [
    "PAIR_KINDS", "Z95", "bootstrap_rate", "EXCLUSION_COLUMNS", "ExclusionRules",
    "excluded_participants", "exclusion_table", "flag_votes", "headline_votes",
    "participant_table", "CORRELATION_COLUMNS", "METRICS", "image_metric_table",
    "metric_correlations", "DIFFERENCE_COLUMNS", "MIXED_COLUMNS", "MODEL_STATS_COLUMNS",
    "PAIR_COLUMNS", "dprime", "mixed_model", "model_differences", "model_stats",
    "pair_model_table", "precise_enough", "votes_needed", "image_table", "model_table",
    "real_image_table", "real_table", "wilson_interval", "summary",
    "_col_bool", "_col_float", "_counted", "_in_time_order", "_repeat_of", "_z", "_boot_rates",
    "_boot_weights", "_percentile_interval", "_as_bool", "_as_float", "_as_int", "_correct",
    "_given_answer", "_pattern", "_repeat_flags", "_word", "_IMAGE_COLUMNS", "_resampled_ranks",
    "_weighted_spearman", "_model_order", "_probit", "_wilson_width", "_rate_table",
]
