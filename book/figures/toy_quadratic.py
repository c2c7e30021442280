"""The theory chapter's picture: SGD, L2 and EWC on two quadratic tasks in two weights.

Task A is stiff along w1 and loose along w2; task B wants both weights elsewhere.
For quadratic losses each method's end point has a closed form, and EWC with the
exact (diagonal) Hessian of A is the exact Bayesian answer. An illustration, not
a result: run ``python book/figures/toy_quadratic.py`` to redraw it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

# The book's colour-blind-safe palette, and its method colours (lungcl/plots/style.py)
PALETTE = sns.color_palette("colorblind", 8)
SGD_C, L2_C, EWC_C, TASK_B_C = PALETTE[3], PALETTE[1], PALETTE[0], PALETTE[4]

A_CENTRE, H_A = np.array([0.0, 0.0]), np.diag([8.0, 0.25])  # task A: stiff in w1, loose in w2
B_CENTRE, H_B = np.array([2.0, 2.5]), np.eye(2)  # task B
LAMBDA = 1.0


def loss(centre: np.ndarray, hessian: np.ndarray, w: np.ndarray) -> np.ndarray:
    d = w - centre
    return 0.5 * np.einsum("...i,ij,...j->...", d, hessian, d)


def descend(stiffness: np.ndarray, steps: int = 400, lr: float = 0.02) -> np.ndarray:
    """Gradient descent on L_B + (lambda/2) (w - w_A)^T S (w - w_A), started at task A's optimum."""
    w, path = A_CENTRE.copy(), [A_CENTRE.copy()]
    for _ in range(steps):
        w = w - lr * (H_B @ (w - B_CENTRE) + LAMBDA * stiffness @ (w - A_CENTRE))
        path.append(w.copy())
    return np.array(path)


def main(out: Path) -> None:
    plt.rcParams.update({"font.size": 12, "legend.fontsize": 10})
    methods = {"SGD (no penalty)": (np.zeros((2, 2)), SGD_C),
               "L2 (same spring on every weight)": (np.eye(2), L2_C),
               "EWC (spring = Fisher of task A)": (np.diag(np.diag(H_A)), EWC_C)}
    g1, g2 = np.meshgrid(np.linspace(-1.2, 4.4, 300), np.linspace(-2.2, 3.5, 300))
    grid = np.stack([g1, g2], axis=-1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5.4), gridspec_kw={"width_ratios": [1.25, 1]})
    ax.contourf(g1, g2, loss(A_CENTRE, H_A, grid), levels=[0, 1.0], colors=["0.85"])
    ax.contour(g1, g2, loss(A_CENTRE, H_A, grid), levels=[0.25, 1.0, 3.0], colors="0.45", linewidths=0.8)
    ax.contour(g1, g2, loss(B_CENTRE, H_B, grid), levels=[0.1, 0.5, 1.5, 3.0], colors=[TASK_B_C],
               linewidths=0.8, linestyles="--")
    ax.plot(*A_CENTRE, "ko")
    ax.annotate("task A optimum", A_CENTRE, xytext=(8, -14), textcoords="offset points")
    ax.plot(*B_CENTRE, "o", color=TASK_B_C)
    ax.annotate("task B optimum", B_CENTRE, xytext=(10, -4), textcoords="offset points", color=TASK_B_C)
    ends = {}
    for name, (stiffness, colour) in methods.items():
        path = descend(stiffness)
        ax.plot(path[:, 0], path[:, 1], color=colour, lw=2, label=name)
        ax.plot(*path[-1], "s", color=colour, ms=7)
        ends[name] = path[-1]
    ax.set(xlabel="weight $w_1$ (task A is sensitive to it)", ylabel="weight $w_2$ (task A barely cares)",
           title="Learning task B, starting from task A's optimum", aspect="equal")
    ax.text(-1.1, 3.15, "grey: low loss on A\npurple dashes: loss of B", fontsize=9, color="0.3",
            va="top")
    ax.legend(loc="lower right", framealpha=0.95)

    names = [n.split(" (")[0] for n in methods]
    la = [float(loss(A_CENTRE, H_A, w)) for w in ends.values()]
    lb = [float(loss(B_CENTRE, H_B, w)) for w in ends.values()]
    x = np.arange(len(names))
    bx.bar(x - 0.2, la, 0.4, label="loss on old task A", color="0.55")
    bx.bar(x + 0.2, lb, 0.4, label="loss on new task B", color=TASK_B_C)
    for i, (a, b) in enumerate(zip(la, lb)):
        bx.text(i - 0.2, a + 0.2, f"{a:.1f}", ha="center", fontsize=10)
        bx.text(i + 0.2, b + 0.2, f"{b:.1f}", ha="center", fontsize=10)
    bx.set_xticks(x, names)
    bx.set(ylabel="loss at the end point", title=f"Where each method ends ($\\lambda$ = {LAMBDA:g})")
    bx.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(Path(__file__).with_suffix(".png"))
