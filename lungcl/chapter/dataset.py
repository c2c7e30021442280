"""The data chapter's tables and sentences: LIDC in numbers, reader agreement, task sizes, the split."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..data.nodules import CHARACTERISTICS
from ..data.tasks import THESIS_LETTERS, resolve_tasks


def _counts(table: pd.DataFrame) -> list[int]:
    return [table.scan_id.nunique(), table.patient_id.nunique(), len(table), int(table.n_readers.sum())]


def overview_table(all_nodules: pd.DataFrame, nodules: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Scans, patients, nodules and reader marks of all LIDC and of the profile's patients."""
    return pd.DataFrame({"all of LIDC": _counts(all_nodules), f"profile {profile}": _counts(nodules)},
                        index=["scans with a nodule", "patients with a nodule", "nodules (3 mm or more)",
                               "reader marks"])


def few_readers_sentence(all_nodules: pd.DataFrame) -> str:
    """How many nodules only one or two readers marked, and why it matters."""
    few = (all_nodules.n_readers <= 2).mean()
    return (f"{few:.0%} of the nodules were marked by only one or two of the four readers: small or subtle "
            "findings the others did not call a nodule of 3 mm or more. Their consensus is one or two "
            "opinions, which matters for how reliable a label is.")


def every_rating(all_nodules: pd.DataFrame) -> pd.DataFrame:
    """One row per individual rating: ``characteristic``, ``rating``."""
    return pd.concat([pd.DataFrame({"characteristic": name, "rating": np.concatenate(
        all_nodules[f"{name}_ratings"].to_numpy())}) for name in CHARACTERISTICS])


def multi_reader(all_nodules: pd.DataFrame) -> pd.DataFrame:
    """The nodules two or more readers rated (the ones where agreement can be measured)."""
    return all_nodules[all_nodules.n_readers >= 2]


def reader_agreement(all_nodules: pd.DataFrame) -> pd.DataFrame:
    """Per characteristic, the share of multi-reader nodules rated identically / within one step."""
    multi = multi_reader(all_nodules)
    rows = []
    for name in CHARACTERISTICS:
        spans = multi[f"{name}_ratings"].map(lambda r: max(r) - min(r))
        rows.append({"characteristic": name, "identical": (spans == 0).mean(),
                     "within one step": (spans <= 1).mean()})
    return pd.DataFrame(rows).set_index("characteristic")


def rating_pairs(all_nodules: pd.DataFrame, characteristic: str = "malignancy") -> pd.DataFrame:
    """Counts of (one reader's, another reader's) ratings of one nodule, every ordered pair once."""
    pairs = np.array([(a, b) for r in multi_reader(all_nodules)[f"{characteristic}_ratings"]
                      for i, a in enumerate(r) for j, b in enumerate(r) if i != j])
    return pd.crosstab(pd.Series(pairs[:, 0], name="one reader"), pd.Series(pairs[:, 1], name="another reader"))


def agreement_sentence(agreement: pd.DataFrame) -> str:
    """What the agreement table says about the three tasks' characteristics."""
    m = agreement.loc["malignancy"]
    return (f"On malignancy, the readers of a nodule all give the same rating for {m['identical']:.0%} of the "
            f"nodules, and stay within one step of each other for {m['within one step']:.0%}; for the other "
            f"{1 - m['within one step']:.0%} they span two steps or more. Lobulation: "
            f"{agreement.loc['lobulation', 'identical']:.0%} identical; calcification: "
            f"{agreement.loc['calcification', 'identical']:.0%} identical (mostly agreeing on \"absent\").")


def task_sizes(nodules: pd.DataFrame) -> pd.DataFrame:
    """Per binary task: its rule, positives, negatives, dropped nodules, majority-class accuracy."""
    rows = []
    for task in resolve_tasks("all"):
        labels = task.labels(nodules)
        pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
        rows.append({"task": task.name + (f" ({task.letter})" if task.letter else ""),
                     "rule": task.rule.describe(), "positive": pos, "negative": neg,
                     "dropped": int((labels < 0).sum()), "majority-class accuracy": max(pos, neg) / (pos + neg)})
    return pd.DataFrame(rows).set_index("task")


def thesis_tasks_sentence(sizes: pd.DataFrame) -> str:
    """The thesis's three tasks' class sizes and majority-class accuracy, one bullet each."""
    abc = sizes.loc[[f"{n} ({k})" for k, n in THESIS_LETTERS.items()]]
    lines = [f"- **{name}**: {r.positive} positive and {r.negative} negative nodules kept, {r.dropped} "
             f"dropped; always answering the majority class is right {r['majority-class accuracy']:.1%} of "
             "the time." for name, r in abc.iterrows()]
    return "For the thesis's three tasks:\n\n" + "\n".join(lines)


def split_view(table: pd.DataFrame, part: np.ndarray, patient_ids: np.ndarray) -> pd.DataFrame:
    """Positive / negative nodules per task (rows) and part of the split (columns), plus patients per part.

    ``table`` is :func:`lungcl.data.summary.summary_table`; ``part`` names each nodule's part.
    """
    table = table.assign(pn=table.positive.astype(str) + " / " + table.negative.astype(str))
    view = table.pivot(index="task", columns="split", values="pn")
    view = view[["test"] + [f"fold{k}" for k in range(5)]]
    view.columns.name = "split"
    patients = pd.Series(part).groupby(np.asarray(patient_ids)).first().value_counts()
    view.loc["patients"] = [str(int(patients.get(p, 0))) for p in view.columns]
    return view


def provenance_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """The patch store's provenance as a one-column table."""
    prov = provenance
    return pd.Series({
        "source": prov["source"], "profile": prov["profile"], "nodules in the store": prov["n_nodules"],
        "scans that failed": prov["n_failed_scans"],
        "crop (mm) / patch (px)": f"{prov['settings']['crop_mm']} / {prov['settings']['patch_px']}",
        "pylidc version": prov["pylidc_version"], "store checksum": prov["manifest_sha256"][:16],
    }, name="").to_frame()
