"""Features or heads? What an earlier task still has after each stage, beyond what its head scores.

With ``probes=True`` a sequence run records, after every stage and for every task trained so far (any
finished sequence run can have the same afterwards, from the weights it kept of every stage:
:mod:`.run_probes`):

- **probe**: a class-balanced logistic regression (scikit-learn) on the frozen trunk's pooled
  features, fitted on the task's un-augmented training split and scored on its test split: what a
  linear read-out of the current representation still knows (Davari et al. CVPR 2022);
- **recalibrated**: the task's own head with its decision threshold refitted on the task's
  validation split (the threshold on p(positive) with the best validation balanced accuracy),
  scored on test: what re-setting the head's bias alone recovers (cf. BiC, Wu et al. CVPR 2019);

and, once per run, the same probe on the untrained network (the floor a probe reaches on random
features, as Hess et al. TMLR 2024 report it). :func:`forgetting_split` turns them into the
accuracy an earlier task lost, split into representation, calibration (the re-thresholding gain at the
end beyond the same gain at the task's own stage) and the rest.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import LungclError
from ..models.resnet import PreActResNet
from .evaluation import EvalSet, Evaluator, materialise
from .trainer import unaugmented

PROBE_METRICS = ("accuracy", "balanced_accuracy")


def _scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return {"accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted))}


@torch.inference_mode()
def trunk_features(model: PreActResNet, x: Tensor, task: str, device: torch.device,
                   batch_size: int = 256) -> np.ndarray:
    """The trunk's pooled features (N, F) of patches ``x`` in eval mode (``task``'s normalisation
    statistics when the network keeps them per task)."""
    was_training = model.training
    model.eval()
    try:
        out = [model.features(x[i:i + batch_size].to(device), task).float().cpu()
               for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


def training_sets(splits: Mapping[str, Any], tasks: list[str]) -> dict[str, EvalSet]:
    """Each task's training nodules, un-augmented and not up-sampled, stacked once per run."""
    return {t: materialise(unaugmented(splits[t].train, int(splits[t].provenance["settings"]["patch_px"])))
            for t in tasks}


def probe(model: PreActResNet, fit: EvalSet, evaluator: Evaluator, task: str, device: torch.device) -> dict:
    """Test accuracy and balanced accuracy of a class-balanced logistic regression fitted on the frozen
    trunk's features of ``fit`` (``task``'s training nodules, :func:`training_sets`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(fit.y)) < 2:
        raise LungclError(f"the probe of {task} needs both classes in its training split")
    test = evaluator.sets[(task, "test")]
    clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000))
    clf.fit(trunk_features(model, fit.x, task, device), fit.y)
    return _scores(test.y, clf.predict(trunk_features(model, test.x, task, device)))


def best_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """The threshold on p(positive) with the best balanced accuracy on (y, prob): candidates are the
    midpoints between sorted distinct probabilities (and both ends); ties go to the one nearest 0.5."""
    from sklearn.metrics import balanced_accuracy_score

    p = np.unique(prob)
    candidates = np.concatenate([[p[0] - 1e-9], (p[:-1] + p[1:]) / 2, [p[-1] + 1e-9]]) if len(p) else np.array([0.5])
    scores = np.array([balanced_accuracy_score(y, prob > t) for t in candidates])
    best = np.flatnonzero(scores == scores.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def recalibrated(model: nn.Module, evaluator: Evaluator, task: str) -> dict:
    """``task``'s head with its threshold refitted on validation: the threshold and the test scores."""
    _, val = evaluator.predict(model, task, "val")
    _, test = evaluator.predict(model, task, "test")
    threshold = best_threshold(evaluator.sets[(task, "val")].y, val)
    return {"threshold": threshold, **_scores(evaluator.sets[(task, "test")].y, (test > threshold).astype(int))}


def stage_probes(model: PreActResNet, trains: Mapping[str, EvalSet], evaluator: Evaluator, tasks: list[str],
                 stage: int, device: torch.device) -> list[dict]:
    """Rows {stage, task, probe: {...}, recalibrated: {...}} for the tasks trained up to ``stage``."""
    return [{"stage": stage, "task": t, "probe": probe(model, trains[t], evaluator, t, device),
             "recalibrated": recalibrated(model, evaluator, t)} for t in tasks[:stage + 1]]


def floor_probes(model: PreActResNet, trains: Mapping[str, EvalSet], evaluator: Evaluator, tasks: list[str],
                 device: torch.device) -> dict[str, dict]:
    """The probe of every task on ``model`` before any training (random features)."""
    return {t: probe(model, trains[t], evaluator, t, device) for t in tasks}


def forgetting_split(record: Any, metric: str = "balanced_accuracy") -> pd.DataFrame:
    """Per earlier task of a sequence record with probes: the ``metric`` (test) its head lost from the end
    of its own stage to the end of the sequence, split into

    - **representation**: what the linear probe lost over the same stages;
    - **calibration**: what refitting the head's threshold on validation gives back at the end, minus what
      it gave back at the task's own stage (a head that was mis-calibrated from the start has not
      *forgotten* its calibration);
    - **rest**: the remainder, the re-thresholded head's loss beyond the probe's (the head's direction no
      longer fits the features, and the noise);

    so lost = representation + calibration + rest, with the probe's floor (untrained network) beside
    them. The re-thresholded head's loss is ``recalibrated_own - recalibrated_final``."""
    data = record.data if hasattr(record, "data") else record
    rows = data.get("probes")
    if not rows:
        raise LungclError(f"record {data.get('run_id')} has no probes (run it with --set probes=true, or compute "
                          "them from its stage weights: lungcl.experiments.run_probes.probes_of)")
    tasks, last = list(data["tasks"]), len(data["tasks"]) - 1
    at = {(r["stage"], r["task"]): r for r in rows["stages"]}
    R = np.array(data["matrices"]["test"][metric], dtype=float)
    out = []
    for i, t in enumerate(tasks[:-1]):
        if (i, t) not in at or (last, t) not in at:
            continue
        own, end = at[(i, t)], at[(last, t)]
        lost = R[i, i] - R[last, i]
        representation = own["probe"][metric] - end["probe"][metric]
        gap_own = own["recalibrated"][metric] - R[i, i]
        gap_end = end["recalibrated"][metric] - R[last, i]
        calibration = gap_end - gap_own
        out.append({"task": t, "lost": lost, "representation": representation, "calibration": calibration,
                    "rest": lost - representation - calibration, "head_final": R[last, i],
                    "calibration_gap_own": gap_own, "calibration_gap_final": gap_end,
                    "probe_final": end["probe"][metric], "recalibrated_final": end["recalibrated"][metric],
                    "probe_floor": rows["floor"].get(t, {}).get(metric, np.nan)})
    return pd.DataFrame(out)


__all__ = ["PROBE_METRICS", "best_threshold", "floor_probes", "forgetting_split", "probe", "recalibrated",
           "stage_probes", "training_sets", "trunk_features"]
