"""The thesis's four findings tested on the task-order design, on test balanced accuracy.

**Design.** A *replicate* is one (order, fold, seed) at which SGD, L2 and EWC all ran (other methods,
e.g. the frozen or joint references, are left out of findings 1-3). Findings 1-3 are margins on the
methods' accuracy matrices (:data:`lungcl.thesis.FINDINGS`, positive in the thesis's direction).

**Estimate.** Order is a fixed effect, seeds and folds are replicates: the margin is averaged over the
replicates of each order, and the estimate is the mean of those per-order means (every order weighs the
same, whatever its number of runs).

**Interval** (:data:`INTERVAL`): a two-level bootstrap. Each of ``n_boot`` draws resamples, within every
order, as many replicates as it has, with replacement; inside each drawn replicate it resamples the test
*patients* with replacement (one resample for every method and task of that replicate: they share the
test set), recomputes the balanced accuracies from the per-nodule probabilities the records keep
(:meth:`lungcl.experiments.Record.test_predictions`) and the margin from them; the draw's estimate is
the mean over orders. The interval is the percentile interval of the draws (1 - alpha, not adjusted). A
record without predictions (written before they were kept) contributes its own margin, so its replicate
adds the spread between runs only (the scheme then says so).

**p-values.** A finding's p is that of a two-sided normal test of its estimate against the standard
deviation of its bootstrap draws (a draw-count p would bottom out at 2 / (1 + n_boot), too coarse for a
correction over eight tests); no spread at all gives no p (nan, no verdict). Finding 4's p is its
equivalence test's. All the tests listed are
one family, corrected by **Holm's** step-down method (:func:`holm`); a verdict reads the adjusted p.

**Finding 4** ("task order matters little"), per method, on the average final balanced accuracy of each
run: the sums of squares of a two-way layout (order fixed; seed the replicate, its main effect where
every order ran the same seeds; the rest), as shares of the total; and an equivalence test (TOST) that
no two orders differ by ``equivalence_margin`` or more: for each pair of orders, two one-sided t-tests
on the difference of their means with the pooled within-order variance (df = runs - orders); the
finding's p is the largest pair's (intersection-union: no adjustment over pairs). Its estimate is the
largest difference between two order means, its interval the range the pairs' (1 - 2 alpha) intervals
reach (equivalence <=> its upper end < the margin).

**Verdicts.** *untestable: the networks did not learn the tasks* when, for any task, the mean over the
design's runs of its *validation* balanced accuracy right after its own stage is <= ``learned_floor``
(0.55): comparisons between networks at chance say nothing about the methods. Otherwise, findings 1-3:
*reproduced* (adjusted p < alpha, estimate > 0), *reversed* (adjusted p < alpha, estimate < 0), *not
reproduced* (not significant, and the interval excludes the thesis's own margin; never on a zero-width
interval), else *inconclusive*. Finding 4, per method: *reproduced* when the adjusted equivalence p <
alpha; *reversed* when some pair of orders differs by more than the margin with a one-sided t bound at
level alpha / (number of pairs) (Bonferroni over the pairs); else *inconclusive*. Each finding also
lists its per-order means (``per_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

from . import metrics as M
from .errors import LungclError
from .methods import THESIS_METHODS
from .orders import order_label
from .thesis import FINDINGS, thesis_margin

METRIC = "balanced_accuracy"
ORDER_FINDING = "4. Task order matters little"
UNTESTABLE = "untestable: the networks did not learn the tasks"
VERDICTS = ("reproduced", "reversed", "not reproduced", "inconclusive", UNTESTABLE)
INTERVAL = ("two-level bootstrap: seeds (and folds) resampled within each order, test patients resampled "
            "inside each drawn run (one resample for every method and task of the run); estimate = mean over "
            "orders of the per-order means; {level:g} % percentile interval, p from a normal test of the estimate "
            "against the draws' standard deviation (findings 1-3); finding 4: pooled within-order t intervals of "
            "the differences between orders ({tost:g} %, the equivalence test's)")
BETWEEN_RUNS_ONLY = ("; some records keep no per-nodule predictions (written before they were kept): "
                     "their runs add the spread between runs only")
CORRECTION = "Holm's step-down correction over every test listed (findings 1-3 and finding 4 per method)"


@dataclass(frozen=True)
class Run:
    """One record as the findings read it: its test balanced accuracy matrix, the diagonal of its validation
    one, and (when kept) its per-nodule test probabilities with their labels and patients."""

    method: str
    R: np.ndarray
    val_diagonal: np.ndarray
    test_set: dict | None
    probabilities: list | None


@dataclass(frozen=True)
class Replicate:
    """One (order, fold, seed) of the design: the runs of the thesis's methods there."""

    order: str
    fold: int
    seed: int
    tasks: tuple[str, ...]
    runs: dict[str, Run]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan stays nan and is not counted in the family)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def replicates(records: Iterable) -> list[Replicate]:
    """The records' replicates: (order, fold, seed) -> each thesis method's run; only those where all three
    ran. Two different runs of one method at one replicate (another lambda, another setting) are refused."""
    found: dict[tuple[str, int, int], dict[str, Run]] = {}
    ids: dict[tuple, str] = {}
    tasks: dict[str, tuple[str, ...]] = {}
    for r in records:
        c = r.config
        if c.kind != "sequence" or c.method not in THESIS_METHODS:
            continue
        key = (order_label(r.tasks), c.fold, c.seed)
        if ids.setdefault((*key, c.method), c.run_id) != c.run_id:
            raise LungclError(f"two {c.method} runs at order {key[0]}, fold {key[1]}, seed {key[2]} ({c.label} and "
                              f"run {ids[(*key, c.method)]}): give the findings one design's records")
        tasks[key[0]] = tuple(r.tasks)
        kept = r.test_predictions()
        found.setdefault(key, {})[c.method] = Run(
            c.method, r.accuracy_matrix("test", METRIC).to_numpy(),
            np.diag(r.accuracy_matrix("val", METRIC).to_numpy()),
            kept[0] if kept else None, kept[1] if kept else None)
    return [Replicate(o, f, s, tasks[o], runs) for (o, f, s), runs in sorted(found.items())
            if set(THESIS_METHODS) <= set(runs)]


def learned(reps: Sequence[Replicate]) -> dict[str, float]:
    """Per task: the mean over the runs of its validation balanced accuracy right after its own stage."""
    values: dict[str, list[float]] = {}
    for rep in reps:
        for run in rep.runs.values():
            for task, v in zip(rep.tasks, run.val_diagonal):
                values.setdefault(task, []).append(float(v))
    return {t: float(np.nanmean(v)) for t, v in sorted(values.items())}


def _weighted_balanced_accuracy(y: np.ndarray, called: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Balanced accuracy under patient weights ``w`` (draws x nodules), :func:`lungcl.metrics.binary_metrics`'
    rule (one class present: its recall)."""
    pos, neg = y == 1, y == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = (w @ (pos & called)) / (w @ pos)
        spec = (w @ (neg & ~called)) / (w @ neg)
    return np.where(np.isnan(sens), spec, np.where(np.isnan(spec), sens, (sens + spec) / 2))


def replicate_draws(rep: Replicate, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Finding -> its margin at ``rep`` under ``n_boot`` resamples of the test patients (the same resample for
    every method and task); the record's own margin repeated when a run keeps no predictions."""
    own = {f: float(margin({m: run.R for m, run in rep.runs.items()})) for f, margin in FINDINGS.items()}
    runs = list(rep.runs.values())
    if any(run.probabilities is None for run in runs):
        return {f: np.full(n_boot, v) for f, v in own.items()}
    tasks = list(rep.tasks)
    patients = sorted({p for t in tasks for p in runs[0].test_set[t]["patients"]})
    index = {p: i for i, p in enumerate(patients)}
    weights = rng.multinomial(len(patients), np.full(len(patients), 1 / len(patients)), size=n_boot)
    test_set = runs[0].test_set
    per_task = {t: (np.asarray(test_set[t]["labels"]), weights[:, [index[p] for p in test_set[t]["patients"]]])
                for t in tasks}
    Rb = {}
    for run in runs:
        R = np.full((n_boot, len(run.probabilities), len(tasks)), np.nan)
        for s, stage in enumerate(run.probabilities):
            for j, t in enumerate(tasks):
                if t in stage:
                    y, w = per_task[t]
                    R[:, s, j] = _weighted_balanced_accuracy(y, np.asarray(stage[t]) >= 0.5, w)
        Rb[run.method] = R
    return {f: np.array([margin({m: R[b] for m, R in Rb.items()}) for b in range(n_boot)])
            for f, margin in FINDINGS.items()}


def _bootstrap_p(estimate: float, draws: np.ndarray) -> float:
    """Two-sided p of a normal test of ``estimate`` against its bootstrap standard error (nan: no spread)."""
    from scipy import stats

    se = float(np.std(draws, ddof=1))
    return float(2 * stats.norm.sf(abs(estimate) / se)) if se > 0 else float("nan")


def margin_finding(finding: str, reps: Sequence[Replicate], draws: Sequence[dict[str, np.ndarray]],
                   n_boot: int, alpha: float, rng: np.random.Generator) -> dict:
    """One of findings 1-3: estimate (mean over orders of the per-order mean margin), the two-level
    bootstrap interval and p, runs per order and the thesis's margin on the same orders."""
    by_order: dict[str, list[int]] = {}
    for i, rep in enumerate(reps):
        by_order.setdefault(rep.order, []).append(i)
    own = [float(FINDINGS[finding]({m: run.R for m, run in rep.runs.items()})) for rep in reps]
    estimate = float(np.mean([np.mean([own[i] for i in idx]) for idx in by_order.values()]))
    boot = np.zeros(n_boot)
    for idx in by_order.values():
        table = np.stack([draws[i][finding] for i in idx])  # replicates x inner draws
        pick = rng.integers(0, len(idx), (n_boot, len(idx)))
        inner = rng.integers(0, n_boot, (n_boot, len(idx)))
        boot += table[pick, inner].mean(axis=1)
    boot /= len(by_order)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return {"finding": finding, "estimate": estimate, "ci": [float(low), float(high)],
            "runs_per_order": {o: len(idx) for o, idx in by_order.items()},
            "per_order": {o: float(np.mean([own[i] for i in idx])) for o, idx in by_order.items()},
            "p": _bootstrap_p(estimate, boot),
            "thesis_margin": _finite(thesis_margin(finding, list(by_order)))}


def order_finding(method: str, reps: Sequence[Replicate], margin: float, alpha: float) -> dict:
    """Finding 4 for one method: the variance shares of order and seed, and the TOST (see the module)."""
    from scipy import stats

    values: dict[str, list[float]] = {}
    keys: dict[str, set] = {}
    for rep in reps:
        values.setdefault(rep.order, []).append(M.average_accuracy(rep.runs[method].R))
        keys.setdefault(rep.order, set()).add((rep.fold, rep.seed))
    out = {"finding": f"{ORDER_FINDING} ({method})", "method": method, "equivalence_margin": margin,
           "runs_per_order": {o: len(v) for o, v in values.items()}}
    y = np.concatenate([np.asarray(v) for v in values.values()]) if values else np.zeros(0)
    means = {o: float(np.mean(v)) for o, v in values.items()}
    out["per_order"] = means
    df = len(y) - len(values)
    if len(values) < 2 or df < 1:
        return {**out, "estimate": np.nan, "ci": [np.nan, np.nan], "p": np.nan, "variance_shares": {}}
    total = float(np.sum((y - y.mean()) ** 2))
    within = float(sum(np.sum((np.asarray(v) - means[o]) ** 2) for o, v in values.items()))
    crossed = len({frozenset(k) for k in keys.values()}) == 1
    seed_ss = np.nan
    if crossed:
        per_key = {}
        for rep in reps:
            per_key.setdefault((rep.fold, rep.seed), []).append(M.average_accuracy(rep.runs[method].R))
        seed_ss = float(sum(len(v) * (np.mean(v) - y.mean()) ** 2 for v in per_key.values()))
    shares = ({"order": (total - within) / total, "seed": _finite(seed_ss / total),
               "rest": (within - (seed_ss if crossed else 0.0)) / total} if total > 0 else {})
    sd = np.sqrt(within / df)
    pairs = [(a, b) for a, b in combinations(values, 2)]
    diffs = np.array([means[a] - means[b] for a, b in pairs])
    se = np.array([sd * np.sqrt(1 / len(values[a]) + 1 / len(values[b])) for a, b in pairs])
    estimate = float(np.max(np.abs(diffs)))
    if sd == 0:
        return {**out, "estimate": estimate, "ci": [np.nan, np.nan], "p": np.nan, "variance_shares": shares}
    p = float(np.max(np.maximum(stats.t.sf((diffs + margin) / se, df), stats.t.cdf((diffs - margin) / se, df))))
    half = stats.t.ppf(1 - alpha, df) * se
    bonferroni = stats.t.ppf(1 - alpha / len(pairs), df) * se
    return {**out, "estimate": estimate, "p": p, "variance_shares": shares,
            "ci": [float(np.max(np.maximum(np.abs(diffs) - half, 0))), float(np.max(np.abs(diffs) + half))],
            "beyond_margin": bool(np.any(np.abs(diffs) - bonferroni > margin))}


def _finite(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _verdict(f: dict, alpha: float, untestable: bool) -> str:
    if untestable:
        return UNTESTABLE
    p, (low, high) = f["p_adjusted"], f["ci"]
    if f["finding"].startswith(ORDER_FINDING):
        if p is not None and p < alpha:
            return "reproduced"
        return "reversed" if f.get("beyond_margin") else "inconclusive"
    if p is None or low is None or high is None:
        return "inconclusive"
    if p < alpha:
        return "reproduced" if f["estimate"] > 0 else "reversed" if f["estimate"] < 0 else "inconclusive"
    th = f.get("thesis_margin")
    if high - low > 1e-12 and th is not None and not low <= th <= high:
        return "not reproduced"
    return "inconclusive"


def findings_report(records: Iterable, n_boot: int | None = None, alpha: float = 0.05,
                    equivalence_margin: float = 0.02, learned_floor: float = 0.55, seed: int = 0) -> dict:
    """Every finding on ``records`` (one design: orders x folds x seeds of SGD, L2 and EWC): estimate,
    interval, runs per order, p, Holm-adjusted p and verdict, with the scheme, the correction and the
    learning check named once (a JSON-ready dict; the module docstring gives every rule).
    ``n_boot`` None: the records' own setting (their configuration's ``n_boot``)."""
    records = list(records)
    reps = replicates(records)
    if n_boot is None:
        n_boot = max((r.config.n_boot for r in records), default=1000)
    if n_boot < 10 or not 0 < alpha < 0.5 or not equivalence_margin > 0:
        raise LungclError(f"need n_boot >= 10, 0 < alpha < 0.5 and an equivalence margin > 0, got {n_boot}, "
                          f"{alpha}, {equivalence_margin}")
    rng = np.random.default_rng(seed)
    per_task = {t: _finite(v) for t, v in learned(reps).items()}
    untestable = any(v is not None and v <= learned_floor for v in per_task.values())
    draws = [replicate_draws(rep, n_boot, rng) for rep in reps]
    findings = [margin_finding(f, reps, draws, n_boot, alpha, rng) if reps else
                {"finding": f, "estimate": np.nan, "ci": [np.nan, np.nan], "runs_per_order": {}, "per_order": {},
                 "p": np.nan, "thesis_margin": None} for f in FINDINGS]
    findings += [order_finding(m, reps, equivalence_margin, alpha) for m in THESIS_METHODS]
    for f, p in zip(findings, holm([f["p"] for f in findings])):
        f.update(estimate=_finite(f["estimate"]), ci=[_finite(v) for v in f["ci"]], p=_finite(f["p"]),
                 p_adjusted=_finite(p), metric=METRIC)
        f["verdict"] = _verdict(f, alpha, untestable)
    complete = all(run.probabilities is not None for rep in reps for run in rep.runs.values())
    scheme = INTERVAL.format(level=100 * (1 - alpha), tost=100 * (1 - 2 * alpha))
    return {"metric": METRIC, "interval": scheme + ("" if complete else BETWEEN_RUNS_ONLY),
            "correction": CORRECTION, "alpha": alpha, "n_boot": int(n_boot), "equivalence_margin": equivalence_margin,
            "learned": {"rule": f"mean validation balanced accuracy of each task right after its own stage "
                                f"> {learned_floor} (else every verdict is '{UNTESTABLE}')",
                        "per_task": per_task, "floor": learned_floor, "learned": not untestable},
            "replicates": len(reps), "findings": findings}


def _pts(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def _runs(runs_per_order: dict) -> str:
    counts = sorted(set(runs_per_order.values()))
    each = "-".join(str(c) for c in (counts[:1] + counts[-1:] if len(counts) > 1 else counts))
    return f"{each or 0} run(s) in each of {len(runs_per_order)} order(s)"


def findings_table(report: dict):
    """The report's findings as a table: estimate and interval in points, runs, p, adjusted p, verdict."""
    import pandas as pd

    rows = [{"finding": f["finding"], "estimate (points)": _pts(f["estimate"]),
             "interval": f"[{_pts(f['ci'][0])}, {_pts(f['ci'][1])}]", "runs": _runs(f["runs_per_order"]),
             "p": "-" if f["p"] is None else f"{f['p']:.3f}",
             "p (Holm)": "-" if f["p_adjusted"] is None else f"{f['p_adjusted']:.3f}", "verdict": f["verdict"]}
            for f in report["findings"]]
    return pd.DataFrame(rows).set_index("finding")


def scheme_text(report: dict) -> str:
    """How the report's numbers were computed, in one paragraph (metric, interval, p-values, correction,
    equivalence margin and the learning check)."""
    return (f"All on test balanced accuracy, over {report['replicates']} replicate(s) (one order, fold and seed "
            f"at which SGD, L2 and EWC all ran). Intervals: {report['interval']}, {report['n_boot']} draws. "
            f"p-values: {report['correction']}, at level {report['alpha']:g}. Finding 4's equivalence margin: "
            f"{100 * report['equivalence_margin']:g} points. Learning check: {report['learned']['rule']}.")


def verdict_sentences(report: dict, which: str = "all") -> list[str]:
    """One sentence per finding of :func:`findings_report` (``which``: ``"all"``, ``"methods"`` for findings
    1-3, ``"order"`` for finding 4), each stating its verdict with the numbers it rests on; when the runs did
    not learn, one sentence giving the check that says so."""
    learned_ = report["learned"]
    if not learned_["learned"]:
        low = ", ".join(f"{t} {100 * v:.1f} %" for t, v in learned_["per_task"].items()
                        if v is not None and v <= learned_["floor"])
        name = {"all": "All findings", "order": "Finding 4", "methods": "Findings 1-3"}[which]
        return [f"**{name}: {UNTESTABLE}.** Right after its own stage, the mean validation balanced accuracy "
                f"over the runs is {low}, at or below {100 * learned_['floor']:.0f} % (chance is 50 %): differences "
                "between networks that answer at chance say nothing about the methods."]
    out = []
    for f in report["findings"]:
        if which != "all" and (which == "order") != f["finding"].startswith(ORDER_FINDING):
            continue
        p = "-" if f["p_adjusted"] is None else f"{f['p_adjusted']:.3f}"
        if f["finding"].startswith(ORDER_FINDING):
            shares = f.get("variance_shares") or {}
            share = (f"; of the variance between its runs, order explains {100 * shares['order']:.0f} %"
                     + ("" if shares.get("seed") is None else f", seed {100 * shares['seed']:.0f} %")
                     if shares else "")
            out.append(f"**{f['finding']}**: **{f['verdict']}** - the largest difference between two orders' mean "
                       f"average final balanced accuracy is {_pts(f['estimate'])} points (interval "
                       f"[{_pts(f['ci'][0])}, {_pts(f['ci'][1])}]){share}; equivalence within "
                       f"{100 * f['equivalence_margin']:.0f} points: Holm-adjusted p = {p} "
                       f"({_runs(f['runs_per_order'])}).")
            continue
        th = "" if f.get("thesis_margin") is None else f"; the thesis's tables: {_pts(f['thesis_margin'])}"
        out.append(f"**{f['finding']}**: **{f['verdict']}** - margin {_pts(f['estimate'])} points of balanced "
                   f"accuracy, 95 % interval [{_pts(f['ci'][0])}, {_pts(f['ci'][1])}], Holm-adjusted p = {p} "
                   f"({_runs(f['runs_per_order'])}){th}.")
    return out


__all__ = ["METRIC", "ORDER_FINDING", "UNTESTABLE", "VERDICTS", "INTERVAL", "CORRECTION", "Run", "Replicate", "holm",
           "replicates", "learned", "replicate_draws", "margin_finding", "order_finding", "findings_report",
           "findings_table", "scheme_text", "verdict_sentences"]
