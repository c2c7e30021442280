"""A two-weight continual-learning toy the first chapter runs in seconds: forgetting made plain.

Two binary tasks on 2-D inputs, one logistic unit ``z = w1 x1 + w2 x2`` (no bias, so the
weights ARE the plane of the theory chapter's quadratic picture). Task A's label lives in
x1 (x2 is nearly constant there, so A barely cares about w2); task B's label lives in x2,
and in B x1 points the other way. Plain SGD on B drags w1 negative and A is forgotten;
L2 pulls both weights back, so w2 cannot grow and B is learned less; EWC pulls w1 back
hard (A's Fisher is large there) and leaves w2 free. Training uses the package's own
methods (``make_method``: ``penalty`` + ``consolidate``), plain full-batch SGD, momentum 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import LungclError
from .methods import make_method

TASKS = ("A", "B")
SPLITS = ("train", "val", "test")


class LogisticUnit(nn.Module):
    """Two weights, one logit; returns two-class logits [0, z] so the Fisher code sees a softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1, bias=False)
        nn.init.zeros_(self.linear.weight)

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        z = self.linear(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)

    @property
    def weights(self) -> np.ndarray:
        return self.linear.weight.detach().reshape(-1).numpy().copy()


def make_tasks(seed: int = 0, n: int = 400, separation: float = 1.5) -> dict[str, dict[str, tuple[Tensor, Tensor]]]:
    """{task: {split: (x, y)}}: balanced classes, ``n`` samples per split, drawn from ``seed``."""
    if n < 2 or not separation > 0:
        raise LungclError(f"the toy needs n >= 2 and a positive separation, got n={n}, separation={separation}")
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, tuple[Tensor, Tensor]]] = {}
    for task in TASKS:
        out[task] = {}
        for split in SPLITS:
            y = np.arange(n) % 2
            s = 2.0 * y - 1.0  # -1 / +1
            if task == "A":  # label in x1; x2 almost constant
                x = np.stack([separation * s + rng.normal(size=n), 0.1 * rng.normal(size=n)], axis=1)
            else:  # label in x2; x1 mildly points the other way
                x = np.stack([-0.5 * separation * s + rng.normal(size=n), separation * s + rng.normal(size=n)],
                             axis=1)
            out[task][split] = (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long))
    return out


def accuracy(model: nn.Module, data: tuple[Tensor, Tensor]) -> float:
    with torch.no_grad():
        return float((model(data[0]).argmax(1) == data[1]).float().mean())


def train_task(model: nn.Module, method, data: tuple[Tensor, Tensor], steps: int, lr: float) -> list[np.ndarray]:
    """Full-batch plain SGD on cross-entropy + ``method.penalty``; the weight path, start included."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    path = [model.weights]
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(data[0]), data[1]) + method.penalty(model)
        loss.backward()
        opt.step()
        path.append(model.weights)
    return path


@dataclass
class ToyRun:
    """One method's sequence A -> B: accuracies per split after each task, and the weight path."""

    method: str
    strength: float
    acc: dict[str, dict[str, float]] = field(default_factory=dict)  # "after_A"/"after_B" -> "A_val", ...
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def forgetting(self) -> float:
        """Test accuracy on A lost while learning B."""
        return self.acc["after_A"]["A_test"] - self.acc["after_B"]["A_test"]

    @property
    def val_score(self) -> float:
        """Mean validation accuracy over both tasks after B: what lambda is chosen on."""
        return 0.5 * (self.acc["after_B"]["A_val"] + self.acc["after_B"]["B_val"])


def run_sequence(method: str, strength: float, tasks: dict, steps: int = 200, lr: float = 0.5,
                 fisher_samples: int = 400, seed: int = 0) -> ToyRun:
    """Train A then B with ``method``; deterministic for fixed inputs."""
    torch.manual_seed(seed)
    model, cl = LogisticUnit(), make_method(method, strength=strength, fisher_samples=fisher_samples, seed=seed)
    run = ToyRun(method, float(strength))
    paths = []
    for i, task in enumerate(TASKS):
        part = train_task(model, cl, tasks[task]["train"], steps, lr)
        paths.extend(part if i == 0 else part[1:])
        run.acc[f"after_{task}"] = {f"{t}_{s}": accuracy(model, tasks[t][s]) for t in TASKS for s in ("val", "test")}
        cl.consolidate(model, task, [tasks[task]["train"]])
    run.path = np.array(paths)
    return run


DEFAULT_LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # lr x lambda x stiffness < 2: a stable gradient step


def compare(seed: int = 0, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS, **kw) -> dict[str, ToyRun]:
    """SGD, and L2 / EWC each at the lambda with the best validation score (ties: the smaller lambda)."""
    tasks = make_tasks(seed)
    runs = {"sgd": run_sequence("sgd", 0.0, tasks, seed=seed, **kw)}
    for method in ("l2", "ewc"):
        candidates = [run_sequence(method, lam, tasks, seed=seed, **kw) for lam in lambdas]
        runs[method] = max(candidates, key=lambda r: (round(r.val_score, 6), -r.strength))
    return runs


def table(runs: dict[str, ToyRun]):
    """One row per method: lambda, test accuracies after each task, forgetting of A."""
    import pandas as pd

    rows = [{"method": m, "lambda": r.strength, "A after A": r.acc["after_A"]["A_test"],
             "A after B": r.acc["after_B"]["A_test"], "B after B": r.acc["after_B"]["B_test"],
             "forgetting of A": r.forgetting} for m, r in runs.items()]
    return pd.DataFrame(rows).set_index("method")


def plot_paths(runs: dict[str, ToyRun], tasks: dict):
    """The weight plane: task A's and B's training losses as contours, each method's path A -> B."""
    import matplotlib.pyplot as plt

    from .plots.style import METHOD_COLORS

    g1, g2 = np.meshgrid(np.linspace(-2.5, 3.0, 120), np.linspace(-1.0, 4.5, 120))
    w = torch.tensor(np.stack([g1.ravel(), g2.ravel()], 1), dtype=torch.float32)

    def loss(task: str) -> np.ndarray:
        x, y = tasks[task]["train"]
        z = x @ w.T  # (n, grid)
        return F.binary_cross_entropy_with_logits(z, y[:, None].float().expand_as(z),
                                                  reduction="none").mean(0).reshape(g1.shape).numpy()

    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.contour(g1, g2, loss("A"), levels=8, colors="0.45", linewidths=0.8)
    ax.contour(g1, g2, loss("B"), levels=8, colors=[METHOD_COLORS["online_ewc"]], linewidths=0.8, linestyles="--")
    for name, run in runs.items():
        ax.plot(run.path[:, 0], run.path[:, 1], color=METHOD_COLORS[name], lw=2,
                label=f"{name.upper()} (lambda={run.strength:g})")
        ax.plot(*run.path[-1], "s", color=METHOD_COLORS[name], ms=8)
    ax.set(xlabel="$w_1$ (task A's weight)", ylabel="$w_2$ (task B's weight)",
           title="Task A loss (grey), task B loss (dashed): where each method ends")
    ax.legend(loc="lower left")
    return fig
