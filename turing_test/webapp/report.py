"""What the admin tab shows of a survey's results, and what its export writes: the summary text,
the bar chart (SVG), the per-image table (HTML), the rounded tables, the exclusion rules typed on
the tab (`parse_rules`) or stored with a survey (`rules_of`), and the CSV tables of an export.

Gradio-free and database-free: it gets pandas DataFrames (the store's votes, stimulus metrics and
participants) and the survey's info dict, and computes with turing_test.stats. The admin handlers
(admin.py) fetch the data and turn these results into the tab's components.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass

from .. import stats
from ..survey import SurveyError

BOOTSTRAP_REPLICATES = 1000
THUMB_LIMIT = 60  # colorized photos shown on the Per image tab (a third as many real ones)


def parse_rules(text) -> "stats.ExclusionRules":
    """Exclusion rules typed on the admin tab (JSON; empty: the defaults), or SurveyError."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return stats.ExclusionRules()
    if not isinstance(text, str) or len(text) > 4000:
        raise SurveyError("the exclusion rules must be a short JSON object")
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise SurveyError(f"the exclusion rules are not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(d, dict):
        raise SurveyError("the exclusion rules must be a JSON object, e.g. {\"speed_floor_ms\": 200}")
    known = {f for f in stats.ExclusionRules().to_dict()}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SurveyError(f"unknown exclusion rule(s): {', '.join(map(str, unknown))[:200]} "
                          f"(known: {', '.join(sorted(known))})")
    try:
        return stats.ExclusionRules.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise SurveyError(f"invalid exclusion rules: {exc}") from None


def rules_of(info: dict | None) -> "stats.ExclusionRules":
    """A survey's stored exclusion rules (None or unreadable: the defaults)."""
    try:
        return stats.ExclusionRules.from_dict((info or {}).get("exclusion_rules") or None)
    except (TypeError, ValueError):  # stored by a newer or older version: the defaults
        return stats.ExclusionRules()


def rules_json(info: dict | None) -> str:
    """A survey's exclusion rules as the settings panel shows them."""
    return json.dumps(rules_of(info).to_dict(), indent=1)


def planning_line(model_stats) -> str:
    """How many more votes each model needs for a 95% interval 10 points wide."""
    if model_stats is None or not len(model_stats):
        return ""
    parts = []
    for r in model_stats.itertuples():
        need = stats.votes_needed(float(r.fooling_rate), 0.10)
        left = max(0, need - int(r.votes))
        parts.append(f"{r.model}: {'enough' if left == 0 else f'{left} more'}")
    return "\n\nVotes for a 95% interval 10 points wide: " + "; ".join(parts) + "."


def rounded(df):
    """A table as the dashboard shows it: rounded to 3 decimals (None and empty ones as they are)."""
    return df.round(3) if df is not None and len(df) else df


# --- the chart and the per-image table ---------------------------------------------------------

def chart_svg(models, real) -> str:
    """Bar chart of the fooling rate per model with its 95% interval; the dashed line is the
    rate at which real photos are judged real."""
    if models is None or len(models) == 0:
        return ("<p>No votes on colorized photos yet from participants who passed the "
                "attention checks.</p>")
    bar_h, gap, left, width = 26, 12, 170, 360
    n = len(models)
    height = n * (bar_h + gap) + 50
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{left + width + 70}' "
           f"height='{height}' font-family='sans-serif' font-size='12'>"]
    for t in range(0, 101, 25):
        x = left + width * t / 100
        out.append(f"<line x1='{x}' y1='10' x2='{x}' y2='{height - 30}' stroke='#ddd'/>"
                   f"<text x='{x}' y='{height - 14}' text-anchor='middle'>{t}%</text>")
    for i, r in enumerate(models.itertuples(index=False)):
        out.append(_bar(r, 14 + i * (bar_h + gap), bar_h, left, width))
    if real is not None and len(real):
        x = left + width * float(real["judged_real_rate"].iloc[0])
        out.append(f"<line x1='{x:.1f}' y1='6' x2='{x:.1f}' y2='{height - 30}' stroke='#c0392b' "
                   f"stroke-dasharray='5,4' stroke-width='2'/>")
    out.append("</svg>")
    legend = ("<p>Bars: fooling rate (share of votes saying <i>real</i>) with 95% Wilson "
              "intervals. Dashed red line: how often <b>real</b> photos were judged real, the "
              "ceiling every fooling rate must be read against.</p>")
    return "".join(out) + legend


def _bar(r, y: float, bar_h: int, left: int, width: int) -> str:
    """One model's bar of the chart: its label, the bar, the interval's whiskers, the rate."""
    w = width * float(r.fooling_rate)
    out = [f"<text x='{left - 8}' y='{y + bar_h * 0.65}' text-anchor='end'>"
           f"{html.escape(str(r.model))} (n={r.votes})</text>",
           f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='#4f7cac'/>"]
    lo, hi = left + width * float(r.ci_low), left + width * float(r.ci_high)
    cy = y + bar_h / 2
    out.append(f"<line x1='{lo:.1f}' y1='{cy}' x2='{hi:.1f}' y2='{cy}' stroke='#222' stroke-width='2'/>"
               f"<line x1='{lo:.1f}' y1='{cy - 6}' x2='{lo:.1f}' y2='{cy + 6}' stroke='#222' stroke-width='2'/>"
               f"<line x1='{hi:.1f}' y1='{cy - 6}' x2='{hi:.1f}' y2='{cy + 6}' stroke='#222' stroke-width='2'/>")
    out.append(f"<text x='{left + width + 6}' y='{y + bar_h * 0.65}'>"
               f"{100 * float(r.fooling_rate):.1f}%</text>")
    return "".join(out)


def _shown_rows(images, reals, limit: int) -> tuple[list, list]:
    return (list(images.head(limit).itertuples(index=False)),
            list(reals.head(limit // 3).itertuples(index=False)))


def shown_stimuli(images, reals, limit: int = THUMB_LIMIT) -> list[str]:
    """The stimuli whose thumbnails `images_html` shows (colorized ones first)."""
    rows, rrows = _shown_rows(images, reals, limit)
    return [r.stimulus for r in rows + rrows]


def images_html(images, reals, thumbs: dict[str, str], limit: int = THUMB_LIMIT) -> str:
    """The Per image tab: the most fooling colorized photos and the least believed real ones,
    each with its thumbnail (thumbs: stimulus -> image URI, for every one of shown_stimuli)."""
    rows, rrows = _shown_rows(images, reals, limit)

    def cell(r, rate_col, label):
        rate = getattr(r, rate_col)
        return (f"<tr><td><img src='{thumbs[r.stimulus]}' width='72' height='72' alt=''></td>"
                f"<td>{html.escape(str(r.source))}</td><td>{html.escape(label(r))}</td>"
                f"<td>{r.votes}</td><td>{r.real_votes}</td><td>{100 * rate:.0f}%</td>"
                f"<td>{100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%</td></tr>")

    head = ("<tr><th></th><th>source</th><th>version</th><th>votes</th><th>'real'</th>"
            "<th>rate</th><th>95% CI</th></tr>")
    parts = ["<h4>Colorized photos, most fooling first (rate = judged real)</h4>",
             "<table class='turing-table'>", head]
    parts += [cell(r, "fooling_rate", lambda r: str(r.model)) for r in rows]
    parts.append("</table>")
    if len(images) > limit:
        parts.append(f"<p>... and {len(images) - limit} more in the CSV export.</p>")
    parts += ["<h4>Real photos, least believed first</h4>", "<table class='turing-table'>", head]
    parts += [cell(r, "judged_real_rate", lambda r: "real") for r in rrows]
    parts.append("</table>")
    if not rows and not rrows:
        return ("<p>No counted votes yet from participants who passed the attention "
                "checks.</p>")
    return "\n".join(parts)


# --- the dashboard -------------------------------------------------------------------------------

NO_SURVEY = "No survey yet: build a pool below (or with `python -m turing_test build-pool`)."


@dataclass
class Dashboard:
    """One survey's results as the dashboard shows them (images and real_images: the tables the
    Per image tab is made of, with thumbnails by the admin handlers)."""
    summary: str
    chart: str
    per_model: object
    real: object
    images: object
    real_images: object
    participants: object
    differences: object
    exclusions: object
    correlations: object
    with_metrics: object


def summary_markdown(survey_name: str, info: dict, s: dict) -> str:
    """The dashboard's summary: the survey, its stimuli, participants, votes and exclusions."""
    st = info["stimuli"]
    real = s["real"]
    real_line = ("no votes on real photos yet" if not len(real) else
                 f"real photos judged real: **{100 * real['judged_real_rate'].iloc[0]:.1f}%** "
                 f"({real['ci_low'].iloc[0] * 100:.0f}-{real['ci_high'].iloc[0] * 100:.0f}%, "
                 f"n={int(real['votes'].iloc[0])})")
    paradigm = ("two photos side by side (which is colorized? 50% = indistinguishable)"
                if info.get("paradigm") == "pair" else "one photo at a time (real or colorized?)")
    return (f"### Survey {survey_name!r} {'(active: participants get this one)' if info['active'] else '(inactive)'}\n"
            f"Paradigm: {paradigm}.\n\n"
            f"{info['sources']} source photos: {st['real']} real, {st['generated']} colorized, "
            f"{st['attention']} attention checks. **{info['participants']}** participants "
            f"({info['finished']} finished), **{s['n_votes']}** counted votes "
            f"(+{s['n_practice_votes']} practice).\n\n{real_line}.\n\n"
            f"Excluded by the survey's rules: **{len(s['excluded'])}** participants (the "
            "Exclusions tab lists each with its reasons; the figures here leave them out)."
            + planning_line(s["model_stats"]))


def dashboard(survey_name: str, info: dict, votes, metrics) -> Dashboard:
    """The results of one survey from its votes and its stimuli's metrics (the store's frames)."""
    rules = rules_of(info)
    s = stats.summary(votes, rules=rules, n_boot=BOOTSTRAP_REPLICATES)
    ex = s["exclusions"]
    reasons = ex.loc[ex["excluded"], ["participant", "reasons"]] if len(ex) else ex
    per_model = s["model_stats"] if info.get("paradigm") != "pair" else s.get("pair_models")
    with_metrics = stats.image_metric_table(votes, metrics, rules)
    corr = stats.metric_correlations(with_metrics, n_boot=BOOTSTRAP_REPLICATES)
    return Dashboard(summary=summary_markdown(survey_name, info, s),
                     chart=chart_svg(s["models"], s["real"]), per_model=rounded(per_model),
                     real=rounded(s["real"]), images=s["images"], real_images=s["real_images"],
                     participants=rounded(s["participants"]),
                     differences=rounded(s["model_differences"]), exclusions=reasons,
                     correlations=rounded(corr), with_metrics=rounded(with_metrics))


# --- the export ----------------------------------------------------------------------------------

def export_tables(votes, rules: "stats.ExclusionRules", metrics_of, participants_of):
    """The export's tables, [(key, DataFrame)] in the order they are written: the votes with
    their flags (fast, excluded_participant, exclusion_reason), the aggregates, and the
    participants. metrics_of: a callable giving the store's stimulus metrics of the survey, for
    the per-image table (None: all surveys, the plain per-image table); participants_of: a
    callable giving the store's participants frame."""
    s = stats.summary(votes, rules=rules, n_boot=BOOTSTRAP_REPLICATES)
    return [("votes", stats.flag_votes(votes, rules)), ("per_model", s["models"]),
            ("per_model_stats", s["model_stats"]),
            ("model_differences", s["model_differences"]),
            ("exclusions", s["exclusions"]),
            ("per_image", stats.image_metric_table(votes, metrics_of(), rules)
             if metrics_of is not None else s["images"]),
            ("real_photos", s["real_images"]), ("per_participant", s["participants"]),
            ("participants", participants_of())]


def export_tag(survey_name) -> str:
    """The part of the export's file names that names the survey."""
    return (survey_name or "all").replace("/", "_").replace(" ", "_")
