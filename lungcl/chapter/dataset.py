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


# ---------------------------------------------------------------- what the phantom shares between tasks

# The phantom's drawn cues (``lungcl.data.phantom.nodule.NoduleLook``, kept per nodule in the store's
# provenance) and the rating each is drawn from; size is the reader's outline, drawn from no rating.
PHANTOM_CUES = {"lobulation bulges": ("lobulation_amp", "lobulation"),
                "spicules": ("n_spicules", "spiculation"),
                "edge width": ("margin_mm", "margin"),
                "solid share": ("core_fraction", "texture"),
                "calcium present": ("calcium_hu", "calcification"),
                "size": ("diameter_mm", None)}


READERS = "readers' consensus (Spearman)"


def phantom_cues(manifest: Mapping[str, Any], nodules: pd.DataFrame) -> pd.DataFrame | None:
    """Per nodule of ``nodules`` in the store, the cues the phantom drew (:data:`PHANTOM_CUES`), indexed by
    nodule id; None when the store's patches were not drawn by the phantom (no ``look`` in them)."""
    entries = manifest.get("nodules", {})
    looks = {nid: e.get("provenance", {}).get("look") for nid, e in entries.items()}
    looks = {nid: look for nid, look in looks.items() if look}
    if not looks:
        return None
    table = pd.DataFrame.from_dict(looks, orient="index")
    size = nodules.set_index("nodule_id").diameter_mm
    rows = table.index.intersection(size.index)
    cues = pd.DataFrame({name: (table.loc[rows, column] if column != "diameter_mm" else size.loc[rows])
                         for name, (column, _) in PHANTOM_CUES.items()})
    cues["calcium present"] = (cues["calcium present"] > 0).astype(float)
    return cues.astype(float)


def _calcified(nodules: pd.DataFrame) -> pd.Series:
    """1 calcified (consensus 1-5), 0 absent (6), missing for a tie (5.5): calcification's kinds are no scale."""
    c = nodules["calcification"].astype(float)
    return pd.Series(np.where(c <= 5, 1.0, np.where(c >= 6, 0.0, np.nan)), index=nodules.index)


def shared_labels(nodules: pd.DataFrame, cues: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per pair of the thesis's tasks: nodules labelled in both, the correlation of their labels (phi), of
    the readers' consensus ratings (Spearman, all nodules; calcification as calcified or not), and, with
    ``cues``, of the two tasks' drawn phantom cues (Spearman; malignancy has none: missing)."""
    names = list(THESIS_LETTERS.values())
    labels = {n: pd.Series(resolve_tasks(n)[0].labels(nodules).astype(float), index=nodules.nodule_id.to_numpy())
              for n in names}
    ratings = {n: (_calcified(nodules) if n == "calcification" else nodules[n].astype(float))
               .set_axis(nodules.nodule_id.to_numpy()) for n in names}
    cue_of = {rating: name for name, (_, rating) in PHANTOM_CUES.items() if rating}
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = (labels[a] >= 0) & (labels[b] >= 0)
            row = {"pair": f"{a} - {b}", "nodules in both": int(both.sum()),
                   "labels (phi)": float(np.corrcoef(labels[a][both], labels[b][both])[0, 1]),
                   READERS: float(ratings[a].corr(ratings[b], method="spearman"))}
            if cues is not None:
                ca, cb = cue_of.get(a), cue_of.get(b)
                row["phantom cues (Spearman)"] = (float(cues[ca].corr(cues[cb], method="spearman"))
                                                  if ca and cb else np.nan)
            rows.append(row)
    return pd.DataFrame(rows).set_index("pair")


def cues_against_labels(nodules: pd.DataFrame, cues: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of every drawn cue (rows) with each thesis task's labels (columns), over the
    nodules that task labels: which cues carry which task on the phantom."""
    out = {}
    for name in THESIS_LETTERS.values():
        lab = pd.Series(resolve_tasks(name)[0].labels(nodules).astype(float), index=nodules.nodule_id.to_numpy())
        lab = lab[lab >= 0].reindex(cues.index).dropna()
        out[name] = {cue: float(cues.loc[lab.index, cue].corr(lab, method="spearman")) for cue in cues.columns}
    return pd.DataFrame(out)


def phantom_sharing(data_dir: Any, profile: str, source: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(:func:`shared_labels`, :func:`cues_against_labels`) for the profile's store; the second is None
    when the patches are not the phantom's."""
    from ..data.nodules import load_nodule_table
    from ..data.prepare import select_nodules
    from ..data.store import open_store
    from ..profiles import data_settings

    nodules = select_nodules(load_nodule_table(data_dir, progress=False), data_settings(profile))
    cues = phantom_cues(open_store(data_dir, source, profile).manifest, nodules) if source == "phantom" else None
    return shared_labels(nodules, cues), (None if cues is None else cues_against_labels(nodules, cues))


def phantom_sharing_sentence(pairs: pd.DataFrame, by_task: pd.DataFrame | None, top: int = 2) -> str:
    """What the phantom shares between the tasks by construction, read off the two tables: which drawn cues
    carry malignancy (which has no cue of its own) and which task each of them is drawn for."""
    labels = ", ".join(f"{p} {r['labels (phi)']:+.2f}" for p, r in pairs.iterrows())
    readers = ", ".join(f"{p} {v:+.2f}" for p, v in pairs[READERS].items())
    text = (f"The tasks' labels correlate (phi) {labels}; the readers' consensus ratings {readers}: that much the "
            "tasks share in LIDC itself.")
    if by_task is None:
        return text + " These patches are not the phantom's, so no generator decides what else they share."
    mal = by_task["malignancy"].abs().sort_values(ascending=False).head(top)
    drawn_for = {name: rating for name, (_, rating) in PHANTOM_CUES.items()}
    carried = [f"{c} ({by_task.loc[c, 'malignancy']:+.2f}; drawn from the {drawn_for[c]} rating)" if drawn_for[c]
               else f"{c} ({by_task.loc[c, 'malignancy']:+.2f}; the reader's outline)" for c in mal.index]
    others = [c for c in mal.index if drawn_for[c] in ("lobulation", "calcification")]
    text += (" On the phantom, malignancy is not drawn: its labels correlate most with the drawn "
             + " and ".join(carried) + ".")
    if others:
        text += (f" {' and '.join(others).capitalize()} {'is' if len(others) == 1 else 'are'} the cue(s) another "
                 "task of the sequence is drawn from, so what one task learns and another overwrites is partly "
                 "fixed by the generator: interference between the tasks here is in part a property of the phantom, "
                 "not only of LIDC's questions.")
    else:
        text += (" None of these is the cue another task of the sequence is drawn from; the phantom still draws "
                 "every cue from one reader's ratings, which correlate as the readers' do, so how much the tasks "
                 "share here is in part a property of the generator, not only of LIDC's questions.")
    return text
