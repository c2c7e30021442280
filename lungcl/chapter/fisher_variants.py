"""The analysis chapter's "Which Fisher?": EWC with the exact, sampled, empirical and batched Fisher, each
at its own validated lambda, over seeds (paired with exact by seed), and how far each estimate lies from
the exact one, layer by layer, at the same network."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import metrics as M
from .. import summaries
from ..errors import LungclError
from ..fisher import FISHER_KINDS, FISHER_LABELS, compare_fishers
from ..methods.ewc import EWCMethod
from .display import say
from .formats import pts

VARIANTS_NOT_RUN = ("Set `fisher_variants` in the parameters (e.g. `[\"sampled\", \"empirical\", \"batched\"]`) "
                    "to run this comparison (three runs per variant).")

VARIANT_QUANTITIES = {"val_balanced_accuracy": "validation: mean final balanced accuracy",
                      "average_accuracy": "test: average final balanced accuracy",
                      "mean_forgetting": "test: mean forgetting (balanced accuracy points)"}


def _variant_values(record) -> dict[str, float]:
    """One EWC run's validation criterion and its test average final balanced accuracy and mean forgetting (the
    headline metric: a network answering one class cannot flatter it)."""
    test = summaries.transfer_summary(record.accuracy_matrix("test", "balanced_accuracy").to_numpy(), record.tasks)
    val = record.accuracy_matrix("val", "balanced_accuracy").to_numpy()[-1]
    return {"val_balanced_accuracy": float(np.nanmean(val)), "average_accuracy": test["average_accuracy"],
            "mean_forgetting": test["mean_forgetting"]}


def fisher_variant_summary(records: Sequence) -> pd.DataFrame:
    """Per Fisher variant of the EWC ``records`` and quantity (:data:`VARIANT_QUANTITIES`): the mean over
    runs with its 95 % t-interval, and the difference to the exact Fisher's run of the same fold and seed
    (paired) with its interval."""
    values = {(r.config.fisher, r.config.fold, r.config.seed): _variant_values(r) for r in records
              if r.config.method == "ewc" and r.config.kind == "sequence"}
    rows = []
    for variant in [v for v in FISHER_KINDS if any(k[0] == v for k in values)]:
        runs = {k[1:]: v for k, v in values.items() if k[0] == variant}
        for q in VARIANT_QUANTITIES:
            mean, lo, hi = M.mean_ci([v[q] for v in runs.values()])
            paired = [v[q] - values[("exact", *key)][q] for key, v in runs.items() if ("exact", *key) in values]
            d, d_lo, d_hi = M.mean_ci(paired) if variant != "exact" else (np.nan, np.nan, np.nan)
            rows.append({"variant": variant, "quantity": q, "runs": len(runs), "mean": mean, "lo": lo, "hi": hi,
                         "minus_exact": d, "minus_exact_lo": d_lo, "minus_exact_hi": d_hi, "pairs": len(paired)})
    if not rows:
        raise LungclError("no EWC sequence records to compare Fisher variants on")
    return pd.DataFrame(rows)


def fisher_variant_view(summary: pd.DataFrame, strengths: Mapping[str, float],
                        tuned: Mapping[str, bool]) -> pd.DataFrame:
    """The variants side by side: lambda (and where it came from), runs, and each quantity as
    "mean [interval]" in percent (forgetting in points), with the paired difference to exact."""
    def cell(m: float, lo: float, hi: float) -> str:
        return "" if np.isnan(m) else summaries.percent_with_ci(m, lo, hi, ci_digits=1)

    rows = []
    for variant, g in summary.groupby("variant", sort=False):
        row = {"Fisher": FISHER_LABELS[variant], "lambda": f"{strengths.get(variant, np.nan):g}",
               "lambda chosen": "on validation" if tuned.get(variant) else "profile default",
               "runs": int(g.runs.iloc[0])}
        for q, label in VARIANT_QUANTITIES.items():
            r = g.set_index("quantity").loc[q]
            row[label] = cell(r["mean"], r["lo"], r["hi"])
            if q != "val_balanced_accuracy":
                row[f"{label.split(':')[1].strip()} minus exact's"] = cell(
                    r["minus_exact"], r["minus_exact_lo"], r["minus_exact_hi"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("Fisher")


def fisher_distances(pairs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> pd.DataFrame:
    """(variant, exact Fisher, variant's Fisher) triples, each Fisher a {parameter: tensor} of one task at
    one network -> per variant and layer (:func:`lungcl.summaries.layer_of`, labelled) the mean over the
    triples of :func:`lungcl.fisher.compare_fishers`' relative distance, relative L1, correlation, scale."""
    import torch

    rows = []
    for k, (variant, exact, other) in enumerate(pairs):
        labels = summaries.layer_labels(exact)
        missing = [n for n in exact if n not in other]
        if missing:
            raise LungclError(f"Fisher {variant!r} lacks parameter {missing[0]!r}")
        layers: dict[str, list[str]] = {}
        for name in exact:
            layers.setdefault(labels[summaries.layer_of(name)], []).append(name)
        grouped = {key: {layer: torch.cat([f[n].detach().double().flatten() for n in names])
                         for layer, names in layers.items()} for key, f in (("exact", exact), ("other", other))}
        for row in compare_fishers(grouped["exact"], {variant: grouped["other"]}):
            rows.append({**row, "pair": k})
    if not rows:
        raise LungclError("no Fisher pairs to compare")
    t = pd.DataFrame(rows).rename(columns={"parameter": "layer"})
    return t.groupby(["variant", "layer"], sort=False, as_index=False)[
        ["relative_distance", "relative_l1", "correlation", "scale"]].mean()


def fisher_variant_distances(records: Sequence, task: str) -> pd.DataFrame:
    """:func:`fisher_distances` of ``task``'s Fisher in every non-exact EWC record against the exact-Fisher
    record of the same fold and seed: both were computed at the same network, the one after the first
    stage (no penalty acts before the second), so the difference is the variant's alone."""
    exact = {(r.config.fold, r.config.seed): r for r in records if r.config.fisher == "exact"}
    pairs = []
    for r in records:
        partner = exact.get((r.config.fold, r.config.seed))
        if r.config.fisher == "exact" or partner is None:
            continue
        fishers = [EWCMethod.from_state(x.load_checkpoint()["method"]).fishers[task] for x in (partner, r)]
        pairs.append((r.config.fisher, *fishers))
    return fisher_distances(pairs)


def differs_from_exact(row: Mapping[str, float]) -> bool:
    """A variant's paired interval against the exact Fisher (``minus_exact_lo``, ``minus_exact_hi``) excludes
    zero: a difference beyond the spread between runs (False without an interval)."""
    return bool(row["minus_exact_lo"] > 0 or row["minus_exact_hi"] < 0)


def fisher_variant_sentences(summary: pd.DataFrame, distances: pd.DataFrame | None,
                             strengths: Mapping[str, float]) -> str:
    """Per variant: its test average final balanced accuracy against exact's (paired interval: a difference or
    within the spread between runs), how far its Fisher lies from the exact one and at what scale."""
    s = summary.set_index(["variant", "quantity"])
    lines = []
    for variant in [v for v in FISHER_KINDS if v != "exact" and (v, "average_accuracy") in s.index]:
        r = s.loc[(variant, "average_accuracy")]
        d, lo, hi = r["minus_exact"], r["minus_exact_lo"], r["minus_exact_hi"]
        if np.isnan(lo):
            verdict = f"{pts(d)} points against exact, from too few paired runs for an interval"
        elif differs_from_exact(r):
            verdict = (f"{pts(d)} points against exact [{pts(lo)}, {pts(hi)}]: "
                       + ("better" if lo > 0 else "worse") + ", beyond the spread between runs")
        else:
            verdict = (f"{pts(d)} points against exact [{pts(lo)}, {pts(hi)}]: the interval contains zero, "
                       "so no difference from exact shows beyond the spread between runs")
        text = (f"**{FISHER_LABELS[variant]}** (lambda {strengths.get(variant, np.nan):g}): average final test "
                f"balanced accuracy {verdict}.")
        if distances is not None and variant in set(distances.variant):
            dv = distances[distances.variant == variant]
            text += (f" Its Fisher of the first task lies a median {dv.relative_distance.median():.2f} (relative "
                     f"L2) from the exact one over the layers, with correlation {dv.correlation.median():.2f} and "
                     f"{dv.scale.median():.3g} times its mass")
            ratio = strengths.get(variant, np.nan) / strengths.get("exact", np.nan)
            text += (f"; its lambda is {ratio:g} times exact's." if np.isfinite(ratio) else ".")
        lines.append(text)
    return "\n\n".join(f"- {ln}" for ln in lines)



def show_fisher_variants(records: Sequence, first_task: str, strengths: Mapping[str, float],
                         tuned: Mapping[str, bool]) -> pd.DataFrame | None:
    """The Fisher comparison's table and sentences in the notebook; returns the layer distances to plot
    (None and a note when the comparison did not run)."""
    from IPython.display import display

    if not records:
        say(VARIANTS_NOT_RUN)
        return None
    summary = fisher_variant_summary(records)
    distances = fisher_variant_distances(records, first_task)
    display(summaries.page_table(fisher_variant_view(summary, strengths, tuned),
                                 "EWC with each Fisher at its lambda: mean over seeds [95 % t-interval], percent"))
    say(fisher_variant_sentences(summary, distances, strengths))
    return distances
