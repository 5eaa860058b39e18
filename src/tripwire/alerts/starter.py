"""The starter rule set that ``tripwire init`` writes: every layer covered, each with a runbook.

The design's three seed rules come first. They alone miss whole classes of incident: PSI
compares non-missing values, so a 40 % null spike is invisible to it; a ``ticket`` never pages;
and nothing watches performance. The rules after them close those gaps.
"""

from __future__ import annotations

import json

from tripwire.config import Task

_RUNBOOK = """\
    runbook:
      what_it_means: {means}
      what_to_check: {check}
      who_owns_the_fix: {owner}
"""


def _rule(body: str, means: str, check: str, owner: str) -> str:
    # JSON strings are valid YAML scalars, whatever punctuation the text holds.
    return body + _RUNBOOK.format(
        means=json.dumps(means), check=json.dumps(check), owner=json.dumps(owner)
    )


def starter_rules(task: Task) -> str:
    """The ``alerts:`` block, as YAML text with comments, for a model of ``task``.

    >>> from tripwire.config import parse_config
    >>> text = "name: m\\ntask: binary\\nimportance: {x: 1}\\n"
    >>> text += "columns: {features: {x: numeric}, prediction: p, segments: [s]}\\n"
    >>> len(parse_config(text + starter_rules("binary")).alerts)
    8
    >>> "metric: accuracy" in starter_rules("multiclass")
    True
    """
    classifier = task != "regression"
    performance = {"binary": "auc", "multiclass": "accuracy"}.get(task, "rmse")
    drop = "0.05" if classifier else "0.1"
    direction = "fell" if classifier else "rose"
    rules = [
        "alerts:\n  # The seed rules.\n",
        _rule(
            "  - name: psi_top_feature_drift\n    metric: psi\n    feature_set: top_quartile_shap\n"
            "    threshold: 0.25\n    window: 3d\n    severity: page\n",
            "One of the most important inputs has looked different from the reference for three"
            " windows running.",
            "Upstream pipeline and schema changes, new traffic sources, the feature's null share.",
            "TODO: the team that owns this feature's pipeline",
        ),
        _rule(
            "  - name: prediction_rate_shift\n    metric: mean_pred\n    baseline: 7d_trailing\n"
            "    threshold_z: 3.0\n    severity: ticket\n",
            "The mean prediction left its trailing seven-day band.",
            "Input drift on important features first; then the traffic mix by segment.",
            "TODO: the model's data scientists",
        ),
        _rule(
            "  - name: latency_p95\n    metric: p95_ms\n    threshold: 350\n    severity: page\n",
            "One request in twenty takes longer than 350 ms.",
            "The last deploy, the feature store's latency, autoscaling and error rates.",
            "TODO: the serving platform on-call",
        ),
        "  # What the seed rules miss.\n",
        _rule(
            "  - name: null_share_top_features   # PSI ignores nulls; a broken pipeline does not\n"
            "    metric: null_share\n    feature_set: top_quartile_shap\n    threshold: 0.05\n"
            "    baseline: reference\n    severity: page\n",
            "An important input is missing far more often than in the reference.",
            "The upstream job and its last run, joins that produce the feature, schema changes.",
            "TODO: the data engineering on-call",
        ),
        _rule(
            "  - name: out_of_range_inputs\n    metric: out_of_range_share\n    threshold: 0.05\n"
            "    window: 2d\n    severity: ticket\n",
            "Values outside anything seen in the reference (units, encodings, new ranges).",
            "Unit or encoding changes upstream; whether the model extrapolates sensibly there.",
            "TODO: the feature's data owner",
        ),
        _rule(
            "  - name: unseen_categories\n    metric: unseen_share\n    threshold: 0.05\n"
            "    window: 2d\n    severity: ticket\n",
            "Categories the model never saw in training make up a noticeable share of traffic.",
            "New products, markets or client versions; the category mapping upstream.",
            "TODO: the feature's data owner",
        ),
        _rule(
            f"  - name: segment_performance   # realized, once labels arrive\n"
            f"    metric: {performance}\n    segment: each\n    baseline: reference\n"
            f"    threshold: {drop}\n    window: 2d\n    severity: ticket\n",
            f"Realized {performance} {direction} by more than {drop} against the reference, "
            "overall or in a tracked segment, for two windows.",
            "Which segments moved, their input drift, label quality and coverage; "
            "never retrain on this alone (tripwire gate).",
            "TODO: the model's data scientists",
        ),
        _rule(
            "  - name: drift_digest   # everything else goes to the weekly digest, not a pager\n"
            "    metric: psi\n    threshold: 0.25\n    severity: digest\n",
            "A feature drifted; it is not important enough to page for.",
            "Whether the drift persists or spreads to important features.",
            "TODO: the model's data scientists",
        ),
    ]
    return "".join(rules)
