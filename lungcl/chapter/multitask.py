"""The multi-task chapter's tables and sentences: network sizes, the data of a run, which setting wins,
how much the tasks share and whether sharing grows, and sharing against forgetting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ..data.tasks import THESIS_ORDERS
from ..experiments import ResultsFolder, default_config, load_record
from ..models.gated import GatedMultiTaskNet, count_parameters
from ..mtl.sharing import borrowed_share
from ..selection import DEFAULT_SELECT

SGD_SETTING = "gated binary, SGD"


def network_sizes(base: Any) -> pd.DataFrame:
    """Channels per stage and parameters of the gated network (two widths) and the hard-sharing one."""
    from ..models.hard_sharing import HardSharingNet

    n_tasks = len(base.tasks)
    rows = []
    for scale in (1.0, 0.5):
        net = GatedMultiTaskNet([2] * n_tasks, width=base.width, n_stages=base.n_stages, param_scale=scale)
        rows.append({"network": f"gated, param_scale {scale:g}", "channels per stage": net.widths,
                     "parameters": count_parameters(net)})
    hard = HardSharingNet([2] * n_tasks, list(base.tasks), base.depth, base.trunk_width, 1)
    rows.append({"network": f"hard sharing: ResNet-{base.depth}, width {base.trunk_width}, {n_tasks} heads",
                 "channels per stage": [base.trunk_width * 2 ** i for i in range(4)],
                 "parameters": count_parameters(hard)})
    return pd.DataFrame(rows).set_index("network")


def class_counts(record: Any) -> pd.DataFrame:
    """Training nodules per class (columns) and task (rows) of one run."""
    return pd.DataFrame({task: {f"class {c}": n for c, n in enumerate(v["train"])}
                         for task, v in record.data["class_counts"].items()}).T


def data_sentence(record: Any, k_per_label: int) -> str:
    """Batch, epoch and split sizes of one run, and where its patches came from."""
    d = record.data
    return (f"A batch holds {d['batch_size']} draws ({k_per_label} per label of every task); an epoch is "
            f"{d['steps_per_epoch']} batches, about one pass over the {d['n_train']} training nodules; "
            f"validation has {d['n_val']} nodules and test {d['n_test']}, split by patient like every chapter. "
            f"Patches: {d['provenance'].get('source', '?')} source, patch store "
            f"{(d['provenance'].get('manifest_sha256') or '?')[:12]}.")


def best_setting_sentence(test: pd.DataFrame, val: pd.DataFrame) -> str:
    """Each setting's test mean over tasks, and the setting the validation split chooses."""
    means, val_means = test.mean(), val.mean()
    best = val_means.idxmax()
    return ("Mean over tasks (test): " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
            + f". Chosen on the validation split, the best setting is **{best}** (validation mean "
            f"{val_means[best]:.3f}, test mean {means[best]:.3f}). With one fold and one seed, differences of "
            "a few points between settings are within what another patient split would change (see the "
            "intervals below).")


def sharing_sentence(sharing: pd.DataFrame) -> str:
    """The range of the borrowed share over tasks and of the sharing degree off the diagonal."""
    borrowed = pd.Series(borrowed_share(sharing), index=sharing.index)
    off = np.where(np.eye(len(sharing), dtype=bool), np.nan, sharing)
    return (f"Across tasks the borrowed share ranges from {borrowed.min():.3g} ({borrowed.idxmin()}) to "
            f"{borrowed.max():.3g} ({borrowed.idxmax()}). Off the diagonal the matrix ranges from "
            f"{np.nanmin(off):.3g} to {np.nanmax(off):.3g}: the spread between pairs is what could carry "
            "meaning, the level is set by the definition (a dense $C\\times C$ block of small weights against "
            "a diagonal own block).")


def sharing_history(gated: Mapping[str, Any]) -> pd.DataFrame:
    """Mean borrowed share per gated setting and epoch: ``setting``, ``epoch``, ``borrowed share``."""
    return pd.DataFrame([{"setting": name, "epoch": h["epoch"],
                          "borrowed share": float(borrowed_share(np.array(h["overall"])).mean())}
                         for name, rec in gated.items() for h in rec.data["sharing"]["history"]])


def growing_sentence(history: pd.DataFrame) -> str | None:
    """Which settings still borrow more in their last epoch than in the one before (None: none do)."""
    last = history.groupby("setting", sort=False)["borrowed share"].agg(
        lambda v: v.iloc[-1] > v.iloc[-2] if len(v) > 1 else False)
    growing = [name for name, up in last.items() if up]
    if not growing:
        return None
    return (f"The borrowed share still grows in the last epoch for {len(growing)} of the {len(last)} settings "
            f"({', '.join(growing)}): its level depends on how long the network trains, so settings are "
            "compared at the same number of epochs, and the pattern *between pairs* matters more than the level.")


def sgd_sentence(summary: pd.DataFrame, main_name: str, optimizer: str, fusion_init: float) -> str | None:
    """SGD's borrowed share against the main optimiser's, when SGD ran and the fusion started high."""
    if SGD_SETTING not in summary.index or optimizer == "sgd" or fusion_init < 10:
        return None
    s_sgd, s_main = summary.loc[SGD_SETTING, "mean_borrowed"], summary.loc[main_name, "mean_borrowed"]
    return (f"With plain SGD the tasks borrow {s_sgd:.2g} of their input on average, against {s_main:.2g} "
            f"with {optimizer}: a fusion that starts at {fusion_init:g} hardly moves under SGD, and the network "
            "stays what it was at step 0, independent branches. \"Almost no sharing\" can then be a property "
            "of the initialisation and the optimiser rather than of the tasks, which is worth knowing before "
            "reading a sharing heat map as a finding about lesions or nodules.")


def sgd_sequences(profile: str, source: str, data_dir: Path, results_dir: Path, seed: int,
                  fold: int, select: str = DEFAULT_SELECT) -> tuple[dict[str, Any], list[str]]:
    """The finished SGD sequence records of the six thesis orders (checkpoints kept by ``select``, as the
    task-order chapter's), and the orders not run yet."""
    folder = ResultsFolder(results_dir)
    sequences, missing = {}, []
    for order in THESIS_ORDERS:
        cfg = default_config(profile, tasks=order, method="sgd", seed=seed, fold=fold, source=source,
                             data_dir=str(data_dir), select=select)
        if folder.is_finished(cfg.run_id):
            sequences[order] = load_record(cfg.run_id, results_dir)
        else:
            missing.append(order)
    return sequences, missing


def correlation_sentence(link: pd.DataFrame) -> str | None:
    """Spearman's correlation of sharing and forgetting over the ordered pairs (None below three)."""
    if len(link) < 3:
        return None
    rho, p = stats.spearmanr(link.sharing_mutual, link.drop_first_after_second)
    return (f"Spearman's rank correlation over the {len(link)} ordered pairs is {rho:.2f} (p = {p:.2f}). "
            "With six points from one fold and one seed this can only hint: a correlation would have to "
            "survive more folds and seeds before it means that sharing predicts forgetting, and its absence "
            "here does not rule it out.")


def missing_sequences_sentence(missing: list[str], results_name: str) -> str | None:
    """Which orders' SGD runs this section could not read (None: all were there)."""
    if not missing:
        return None
    return (f"The SGD runs of order(s) {', '.join(missing)} are not in `{results_name}/` yet: run the "
            "task-order chapter (or `lungcl grid --orders all --methods sgd`) with the same profile first; "
            "this section reads its records and trains nothing.")
