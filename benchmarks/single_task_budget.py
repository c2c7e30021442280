"""How long must a stage train? Single-task runs at several learning rates, and what a patience would pick.

    python benchmarks/single_task_budget.py [--profile cpu] [--lrs 0.002,0.005,0.01,0.02] [--epochs 12]
        [--eval-every 25] [--seeds 0,1,2] [--workers 2] [--results /tmp/budget]

Each task of ABC is trained alone (RunConfig(kind="single_task")) for ``--epochs`` capped epochs,
evaluated every ``--eval-every`` steps, with no early stop (runs are cached records, so a second
call only re-reads them). From every run's validation curve the stop of the trainer's rule is
replayed: the stage ends once ``patience`` evaluations have not improved its ``select`` criterion
(default: the trainer's, the class-balanced validation loss), and keeps the checkpoint with the best.
Printed per lr and patience (in evaluations): the stop step and the VALIDATION balanced accuracy of the kept checkpoint per task, beside the best
validation balanced accuracy anywhere on the curve (what the budget could reach with a perfect
choice). The lr and patience are choices, so the test split is never read here: the chapters
report test numbers for the settings chosen on validation. One torch thread, one run at a time.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from lungcl.experiments import default_config, run
from lungcl.experiments.runner import execute_grid
from lungcl.runs.executor import records_or_raise
from lungcl.selection import DEFAULT_SELECT, SELECT_RULES, better


def replay(curve: pd.DataFrame, patience: int | None, every: int = 1,
           select: str = DEFAULT_SELECT) -> tuple[int, int]:
    """(stop step, kept step) of the trainer's ``select`` rule with ``patience`` on evaluations at every
    ``every``-th point of ``curve`` (index: stage step, column ``val_<select>``)."""
    points = [s for k, s in enumerate(curve.index[1:], 1) if k % every == 0 or s == curve.index[-1]]
    column = curve[f"val_{select}"]
    best, kept, since = None, 0, 0
    for s in points:
        if better(column[s], best, select):
            best, kept, since = column[s], s, 0
        else:
            since += 1
        if patience and since >= patience:
            return s, kept
    return points[-1], kept


def budget_table(records: list, patiences: list[int | None], select: str = DEFAULT_SELECT) -> pd.DataFrame:
    """Rows (lr, seed, task, patience): stop step, kept step, validation balanced accuracy kept, best on the curve."""
    rows = []
    for r in records:
        c = r.curves()
        c = c[c.task == c.trained]
        for task, g in c.groupby("task", sort=False):
            val = g[g.split == "val"].set_index("stage_step")
            curve = pd.DataFrame({f"val_{select}": val[select], "val_bal": val["balanced_accuracy"]})
            for p in patiences:
                stop, kept = replay(curve, p, select=select)
                rows.append({"lr": r.config.lr, "seed": r.config.seed, "task": task, "patience": p or "none",
                             "stop": stop,
                             "kept": kept, "val_bal_kept": curve.val_bal[kept],
                             "val_bal_best": curve.val_bal.max()})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--lrs", default="0.002,0.005,0.01,0.02")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seeds", default="0", help="network seeds, e.g. 0,1,2: the tables are means over them")
    ap.add_argument("--workers", type=int, default=1, help="runs computed at once, one core each")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--patience", default="2,3,4,6,8", help="patiences (evaluations) to replay")
    ap.add_argument("--select", default=DEFAULT_SELECT, choices=SELECT_RULES,
                    help="the checkpoint rule to replay (default: the trainer's)")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--results", default="results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(v) for v in args.seeds.split(",")]
    configs = [default_config(args.profile, kind="single_task", lr=float(lr), epochs=args.epochs, seed=seed,
                              eval_every=args.eval_every, patience=None, data_dir=args.data_dir)
               for lr in args.lrs.split(",") for seed in seeds]
    if args.workers > 1:
        records = records_or_raise(execute_grid(configs, args.results, workers=args.workers, progress=False))
    else:
        records = [run(c, args.results, progress=False) for c in configs]
    table = budget_table(records, [int(p) for p in args.patience.split(",")] + [None], args.select)
    pd.set_option("display.width", 200)
    print(f"rule replayed: {args.select}")
    print("validation balanced accuracy of the kept checkpoint, per task and lr:")
    over = f" (mean over seeds {args.seeds})" if len(seeds) > 1 else ""
    print(table.pivot_table(index="patience", columns=["task", "lr"], values="val_bal_kept", aggfunc="mean")
          .round(3).to_string())
    print(f"stop step per task and lr{over}:")
    print(table.pivot_table(index="patience", columns=["task", "lr"], values="stop", aggfunc="mean").round(0).to_string())
    per_seed = table.groupby(["patience", "lr", "seed"]).val_bal_kept.mean()
    print(f"mean over tasks of the kept checkpoint's validation balanced accuracy{over}:")
    print(per_seed.groupby(["patience", "lr"]).mean().unstack().round(3).to_string())
    if len(seeds) > 1:
        print("its standard deviation over the seeds:")
        print(per_seed.groupby(["patience", "lr"]).std().unstack().round(3).to_string())
    print(f"mean over tasks of the best validation balanced accuracy on the curve (a perfect choice){over}:")
    print(table.groupby(["patience", "lr", "seed"]).val_bal_best.mean().groupby(["patience", "lr"]).mean()
          .unstack().round(3).to_string())
    for r in records:
        t = r.data.get("timings", {})
        print(f"lr {r.config.lr:g} seed {r.config.seed}: {t.get('total_s', float('nan')):.0f} s for "
              f"{sum(s['steps'] for s in r.data['stages'])} steps")


if __name__ == "__main__":
    main()
