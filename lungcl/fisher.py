"""The diagonal of the Fisher information of one task's head, from per-sample gradients.

F_i = mean over samples n of (d/d theta_i log p(y_n | x_n, theta))^2: the mean of SQUARED
per-sample gradients, not the square of a batch's mean gradient (that one is ~N times
smaller and is not the Fisher). The "true" Fisher draws y_n from the model's own predictive
distribution; the "empirical" Fisher uses the dataset's label. The per-sample gradients
come from ``torch.func`` (``functional_call`` + ``vmap`` + ``grad``) in bounded chunks;
``vectorised=False`` is the plain one-sample-at-a-time loop, kept as the test oracle.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .errors import LungclError

# Per-sample gradients of one chunk are held at once: chunk x trainable parameters x 4 bytes.
_CHUNK_BYTES = 256 * 2**20


def task_parameter_names(model: nn.Module, task: str) -> list[str]:
    """Trainable parameters ``task``'s forward uses: the trunk (everything not under ``heads.``) and its head."""
    names = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("heads.") and not name.startswith(f"heads.{task}."):
            continue
        names.append(name)
    if not any(n.startswith(f"heads.{task}.") for n in names) and any(
            n.startswith("heads.") for n, _ in model.named_parameters()):
        raise LungclError(f"the model has no trainable head for task {task!r}")
    return names


def _batches(loader: Iterable, n_samples: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(x, y) batches from ``loader``, cut so that exactly ``n_samples`` (or all there are) come out."""
    seen = 0
    for batch in loader:
        x, y = batch[0], batch[1]
        take = min(len(x), n_samples - seen)
        if take <= 0:
            break
        yield x[:take], torch.as_tensor(y[:take])
        seen += take
        if seen >= n_samples:
            break


def _log_likelihood_fn(model: nn.Module, task: str, buffers: dict[str, Tensor]) -> Callable:
    """log p(y | x, params) for ONE sample, as a pure function of the named parameters."""
    def log_likelihood(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        logits = functional_call(model, (params, buffers), (x.unsqueeze(0),), {"task": task})
        # gather, not [0, y]: indexing with a batched tensor is data-dependent control flow to vmap
        return F.log_softmax(logits, dim=1)[0].gather(0, y.reshape(1)).squeeze(0)
    return log_likelihood


def fisher_diagonal(model: nn.Module, task: str, loader: Iterable, n_samples: int,
                    empirical: bool = False, vectorised: bool = True, seed: int = 0,
                    chunk_size: int | None = None) -> dict[str, Tensor]:
    """Diagonal Fisher of ``task`` at the model's current weights, {parameter name: tensor}.

    Uses the first ``n_samples`` samples ``loader`` yields (fewer if it runs out), the model
    in eval mode (BatchNorm on its running statistics; the mode is restored afterwards), and
    only the trainable parameters ``task``'s forward touches (trunk + that head).
    ``model(x, task)`` must return logits (N, classes). Labels of the true Fisher are drawn
    with a CPU ``torch.Generator`` seeded by ``seed``, outside the vmap, so both code
    paths see the same labels.
    """
    if n_samples < 1:
        raise LungclError(f"the Fisher needs at least one sample, got n_samples={n_samples}")
    names = task_parameter_names(model, task)
    named = dict(model.named_parameters())
    params = {n: named[n].detach() for n in names}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    device = next(iter(params.values())).device
    n_params = sum(p.numel() for p in params.values())
    if chunk_size is None:
        chunk_size = max(1, min(64, _CHUNK_BYTES // (4 * n_params)))
    log_likelihood = _log_likelihood_fn(model, task, buffers)
    per_sample_grads = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in _batches(loader, n_samples):
                x = x.to(device)
                if empirical:
                    y = y.to(device=device, dtype=torch.long)
                else:
                    probs = F.softmax(model(x, task), dim=1).float().cpu()
                    y = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device)
                if vectorised:
                    for start in range(0, len(x), chunk_size):
                        grads = per_sample_grads(params, x[start:start + chunk_size], y[start:start + chunk_size])
                        for n, g in grads.items():
                            total[n] += g.pow(2).sum(0)
                else:
                    _accumulate_loop(model, task, names, named, x, y, total)
                count += len(x)
    finally:
        model.train(was_training)
    if count == 0:
        raise LungclError(f"the loader gave no samples for the Fisher of task {task!r}")
    return {n: t / count for n, t in total.items()}


def _accumulate_loop(model: nn.Module, task: str, names: list[str], named: dict[str, nn.Parameter],
                     x: Tensor, y: Tensor, total: dict[str, Tensor]) -> None:
    """The oracle: one forward and backward per sample, with ordinary autograd."""
    wrt = [named[n] for n in names]
    for i in range(len(x)):
        with torch.enable_grad():
            log_p = F.log_softmax(model(x[i:i + 1], task), dim=1)[0, y[i]]
            grads = torch.autograd.grad(log_p, wrt)
        for n, g in zip(names, grads):
            total[n] += g.pow(2)


__all__ = ["fisher_diagonal", "task_parameter_names"]
