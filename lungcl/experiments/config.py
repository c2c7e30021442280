"""A run's configuration: one frozen dataclass, filled from a profile, hashed into the run id.

The same configuration always gets the same id, so its record is found and
loaded instead of recomputed; ``--set key=value`` overrides any field, checked
against the field's type. Paths (data folder, LIDC folder) are not hashed: they
say where things are, not what is computed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..runs import config as configs
from ..runs.config import ConfigDict, StoreRef
from ..runs.config import check as _check
from ..data.tasks import resolve_tasks
from ..fisher import FISHER_KINDS
from ..methods import PENALISED, check_method, check_strength
from ..orders import order_label
from ..selection import DEFAULT_SELECT, check_select
from ..profiles import DEFAULT_PROFILE, PROFILES, SEQUENCE_STRENGTH, SEQUENCE_TRAINING, check_profile

# bump when a change to the training code changes the numbers a config produces
CONFIG_VERSION = 4  # 2: the proximal step scaled by 1/(1 - momentum) (the stated lambda); 3: the exact Fisher from
# per-layer per-sample gradients (lungcl.fisher): EWC's numbers move at float rounding; 4: the kept checkpoint and
# the early stop read the ``select`` rule, by default the class-balanced validation loss (the unweighted loss,
# select=loss, kept majority-leaning networks on the imbalanced tasks): every stage's kept weights can move, and
# with them every number of every run (a new field hashed in every id: no id of version 3 reappears); in the same
# version, EWC's Fisher is computed on a class-balanced sample of the training nodules, each head is initialised
# from (seed, task name) and the trunk from the seed alone (so every order with the same first task starts from the
# same network and trains the same first stage, which runs then share: lungcl.experiments.first_stage), and a
# single-patch evaluation batch runs as two copies (the last bits of a batch of one differ on CPU)
KINDS = ("sequence", "single_task")
DEPTHS = (10, 18, 34, 50, 101)
# fields that say where files are, not what is computed: left out of the run id
UNHASHED = ("data_dir", "lidc_root")
# fields added after CONFIG_VERSION 1, hashed only away from the value that reproduces the old
# behaviour, so that adding a setting does not change the id of every existing run
ADDED: dict[str, object] = {"freeze_bn_stats": False, "penalty_step": "gradient", "bn": "update", "norm": "batch",
                             "probes": False, "streams": "position",
                             "curve_every": 1}
PENALTY_STEPS = ("gradient", "proximal")
# BatchNorm's running statistics: PyTorch's default (update), fixed after the first stage (freeze, the
# former freeze_bn_stats=True) or one set per task (task); norm=group has none (GroupNorm)
BN_MODES = ("update", "freeze", "task")
NORMS = ("batch", "group")
STREAMS = ("position", "task")
DEVICE_FORM = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


@dataclass(frozen=True)
class RunConfig(ConfigDict):
    """Everything that decides a run's numbers (plus where its data lives)."""

    paths = UNHASHED

    profile: str = DEFAULT_PROFILE
    source: str = "phantom"
    tasks: tuple[str, ...] = ("malignancy", "lobulation", "calcification")
    kind: str = "sequence"  # "sequence" (continual) or "single_task" (each task alone, from scratch)
    method: str = "sgd"
    strength: float = 0.0  # lambda of l2 / ewc / online_ewc (0 for sgd, frozen, joint)
    fisher_samples: int = 200
    fisher: str = "exact"  # exact | sampled | empirical | batched (lungcl.fisher); replaced empirical_fisher
    gamma: float = 1.0  # online EWC's decay of the running Fisher
    fold: int = 0
    seed: int = 0
    split_seed: int = 0
    depth: int = 18
    width: int = 16
    small_input: bool = True
    spatial_dims: int = 2
    context_slices: int = 0
    epochs: int = 10  # per task
    max_steps_per_epoch: int | None = None  # None = the whole training set each epoch
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eval_every: int = 50  # steps between evaluations (of the stage's task on validation, at least); 0 = each epoch's end
    curve_every: int = 1  # every k-th evaluation (and each kept checkpoint) scores every task on val and test
    patience: int | None = None  # evaluations without a better select criterion before the stage stops
    select: str = DEFAULT_SELECT  # the kept checkpoint's rule (lungcl.selection): balanced_loss | loss |
    # balanced_accuracy | auc, on the stage's task(s)' validation; also decides the early stop
    freeze_bn_stats: bool = False  # the same as bn="freeze" (kept so that older records and ids stay valid)
    bn: str = "update"  # BatchNorm's running statistics: update | freeze (after the first stage) | task
    norm: str = "batch"  # the trunk's normalisation: batch (BatchNorm) | group (GroupNorm: no statistics)
    probes: bool = False  # after each stage: linear probes and re-thresholded heads of the tasks so far
    streams: str = "task"  # a task's data stream (up-sampling, augmentation, order) seeded by its name
    # (task: the same stream in every order; the default) or, as the default was until issue 14, by its position
    # in the order (position: comparing two orders also changes every task's stream)
    penalty_step: str = "gradient"  # "gradient": loss + penalty; "proximal": the pull-back applied exactly
    augment: bool = True
    balance: bool = True
    n_boot: int = 1000  # bootstrap resamples (over test patients) for the confidence intervals
    device: str = "auto"  # "auto" = CUDA when available, else CPU
    amp: bool = False  # mixed precision (CUDA only)
    data_dir: str = "data"
    lidc_root: str | None = None

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if isinstance(self.tasks, str):
            object.__setattr__(self, "tasks", tuple(t.name for t in resolve_tasks(self.tasks)))
        else:
            object.__setattr__(self, "tasks", tuple(t.name for t in resolve_tasks(",".join(self.tasks))))
        _check(self.kind in KINDS, f"unknown run kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        check_method(self.method)
        _check(not self.probes or self.kind == "sequence", "probes are recorded by sequence runs only")
        _check(self.kind == "sequence" or self.method == "sgd",
               "single-task baselines train each task alone from scratch: use method sgd")
        check_strength(self.strength)
        _check(self.penalty_step in PENALTY_STEPS,
               f"penalty_step must be one of {', '.join(PENALTY_STEPS)}, got {self.penalty_step!r}")
        # settings a method does not use are normalised, so they cannot split one run into two ids
        if self.method not in PENALISED:
            object.__setattr__(self, "strength", 0.0)
        if self.method != "online_ewc":
            object.__setattr__(self, "gamma", 1.0)
        _check(self.streams in STREAMS, f"streams must be one of {', '.join(STREAMS)}, got {self.streams!r}")
        _check(self.bn in BN_MODES, f"bn must be one of {', '.join(BN_MODES)}, got {self.bn!r}")
        _check(self.norm in NORMS, f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        _check(not (self.freeze_bn_stats and self.bn == "task"), "freeze_bn_stats is bn=freeze: not with bn=task")
        if self.freeze_bn_stats or self.bn == "freeze":
            object.__setattr__(self, "bn", "freeze")
            object.__setattr__(self, "freeze_bn_stats", True)
        _check(self.method != "frozen" or self.bn != "task",
               "bn=task gives each task its own trunk statistics, which a frozen trunk never learns for the "
               "later tasks: use method frozen with bn=update (or freeze, the same for it)")
        _check(self.norm == "batch" or self.bn == "update",
               f"norm={self.norm} keeps no running statistics: bn must stay 'update', got {self.bn!r}")
        _check(self.fisher in FISHER_KINDS, f"fisher must be one of {', '.join(FISHER_KINDS)}, got {self.fisher!r}")
        if self.method not in ("ewc", "online_ewc"):
            object.__setattr__(self, "fisher", "exact")
        for name in ("strength", "gamma", "lr", "momentum", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))
            _check(math.isfinite(getattr(self, name)), f"{name} must be a finite number, got {getattr(self, name)}")
        _check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma:g}")
        _check(0 <= self.fold <= 4, f"fold must be 0..4, got {self.fold}")
        for name in ("seed", "split_seed"):  # numpy's generators take no negative seed
            _check(getattr(self, name) >= 0, f"{name} must be an integer >= 0, got {getattr(self, name)}")
        _check(self.depth in DEPTHS, f"depth must be one of {DEPTHS}, got {self.depth}")
        _check(self.spatial_dims in (2, 3), f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        for name in ("width", "epochs", "batch_size", "fisher_samples", "n_boot"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.context_slices >= 0, f"context_slices must be >= 0, got {self.context_slices}")
        _check(self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}")
        _check(isinstance(self.curve_every, int) and self.curve_every >= 1,
               f"curve_every must be a whole number >= 1, got {self.curve_every!r}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr:g}")
        _check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum:g}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay:g}")
        _check(self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
               "max_steps_per_epoch must be >= 1 or none")
        _check(self.patience is None or self.patience >= 1, "patience must be >= 1 or none")
        check_select(self.select)
        _check(isinstance(self.device, str) and DEVICE_FORM.fullmatch(self.device) is not None,
               f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        _check(not (self.amp and self.device == "cpu"),
               "amp=true is mixed precision on CUDA: it does nothing with device=cpu; leave amp out")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """Also reads records written before ``fisher`` replaced the boolean ``empirical_fisher``
        (False meant one sampled label per input, True the dataset's label), and records written before
        a setting of :data:`ADDED` existed: they ran with its ADDED value (``streams="position"``,
        although the default is now ``"task"``)."""
        d = {**ADDED, **d}
        if "empirical_fisher" in d:
            legacy = d.pop("empirical_fisher")
            d.setdefault("fisher", "empirical" if legacy else "sampled")
        return super().from_dict(d)

    @property
    def store(self) -> StoreRef:
        return StoreRef(self.data_dir, self.source, self.profile, self.lidc_root)

    @property
    def model_norm(self) -> str:
        """The network's normalisation (:data:`lungcl.models.resnet.NORMS`): batch, task or group."""
        return "group" if self.norm == "group" else ("task" if self.bn == "task" else "batch")

    @property
    def in_channels(self) -> int:
        return 1 + 2 * self.context_slices

    @property
    def data_version(self) -> str:
        """The version of the patches this run reads (source drawing + store layout), from the code."""
        return data_version(self.source)

    @property
    def run_id(self) -> str:
        """sha256 of the canonical JSON of every hashed field and the data version (16 hex digits)."""
        return self.id_for(self.data_version)

    def id_for(self, data_version: str | None) -> str:
        """The run id of this configuration on data of ``data_version`` (None: not part of the id)."""
        return configs.hash_id(canonical_json(self, data_version))

    @property
    def label(self) -> str:
        """A short human name: order, method, lambda, fold, seed."""
        order = order_label(self.tasks)
        if self.kind == "single_task":
            return f"single-task {order} fold{self.fold} seed{self.seed}"
        lam = f" λ={self.strength:g}" if self.method in PENALISED else ""
        bn = {"freeze": " frozen-BN", "task": " task-BN"}.get(self.bn, "") + (" GroupNorm" if self.norm == "group" else "")
        fisher = f" {self.fisher}-Fisher" if self.fisher != "exact" else ""
        streams = " position-streams" if self.streams == "position" else ""
        select = f" select={self.select}" if self.select != DEFAULT_SELECT else ""
        return f"{order} {self.method}{lam}{fisher}{bn}{streams}{select} fold{self.fold} seed{self.seed}"


def canonical_json(config: RunConfig, data_version: str | None = None) -> str:
    """The hashed text: sorted keys, no paths, with the config version (and the data version)."""
    versions: dict[str, Any] = {"config_version": CONFIG_VERSION}
    if data_version is not None:
        versions["data_version"] = data_version
    # bn=freeze is hashed as freeze_bn_stats=True, as before bn existed: only bn=task adds to the id
    neutral = {**ADDED, "bn": config.bn if config.bn in ("update", "freeze") else "update"}
    return configs.canonical_json(config, UNHASHED, neutral=neutral, extra=versions)


def data_version(source: str) -> str:
    """``phantom-5/store1/pipe2``: a new phantom drawing, store layout or batch pipeline (random
    stream of the augmentation) gives new run ids (no stale records)."""
    from ..data.batches import PIPELINE_VERSION
    from ..data.sources import source_version
    from ..data.store import STORE_VERSION

    return f"{source_version(source)}/store{STORE_VERSION}/pipe{PIPELINE_VERSION}"


def training_settings(profile: str) -> dict[str, Any]:
    """The training fields a profile sets (the rest keep the dataclass defaults)."""
    return dict(SEQUENCE_TRAINING[check_profile(profile)])


def default_strength(profile: str, method: str) -> float:
    """The profile's lambda for ``method`` (0 for methods without a penalty)."""
    return SEQUENCE_STRENGTH[check_profile(profile)].get(method, 0.0)


def default_config(profile: str = DEFAULT_PROFILE, **overrides: Any) -> RunConfig:
    """The profile's configuration with ``overrides``; lambda defaults per method unless given."""
    check_profile(profile)
    values = configs.merge_settings(RunConfig, {"profile": profile, **training_settings(profile)}, overrides)
    if "strength" not in overrides or overrides["strength"] is None:
        values["strength"] = default_strength(profile, values.get("method", "sgd"))
    if isinstance(values.get("tasks"), list):
        values["tasks"] = tuple(values["tasks"])
    config = RunConfig(**values)
    check_device(config.device, config.amp)
    return config


def check_device(device: str, amp: bool = False) -> None:
    """A one-line error, before any work, for a CUDA device (or mixed precision) this torch cannot use;
    records trained elsewhere are read without this check."""
    if device in ("auto", "cpu") and not amp:
        return
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        _check(index < n, f"device={device}: this torch sees {n} CUDA device(s) (torch.cuda.is_available() is "
                          f"{n > 0}); use device=cpu or device=auto")
    _check(not amp or n > 0, "amp=true is mixed precision on CUDA and this torch sees no CUDA device: it would "
                             "change nothing but the run id; leave amp out")


# ---------------------------------------------------------------- --set key=value

def _tasks_value(text: str) -> tuple[str, ...]:
    return tuple(t.name for t in resolve_tasks(text))


def parse_value(name: str, text: str) -> Any:
    """``text`` read as the type of field ``name`` (int, float, bool, str, tasks, or none)."""
    return configs.parse_value(RunConfig, name, text, _tasks_value)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.05", "epochs=20"]`` -> typed field values; bad key or value -> LungclError."""
    return configs.parse_overrides(RunConfig, items, _tasks_value)


__all__ = ["RunConfig", "default_config", "check_device", "parse_overrides", "parse_value", "training_settings",
           "default_strength", "canonical_json", "PROFILES", "KINDS",
           "CONFIG_VERSION"]
