"""A multi-task run's configuration: a frozen dataclass filled from a profile and hashed into its id.

Same idea as ``lungcl.experiments.config.RunConfig``: the same settings always
get the same id, so the record is loaded instead of recomputed. Paths (data
folder, Derm7pt folder) are not hashed: they say where things are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runs import config as configs
from ..runs.config import ConfigDict, StoreRef
from ..runs.config import check as _check
from ..data.tasks import resolve_tasks
from ..profiles import DEFAULT_PROFILE, MTL_TRAINING, check_profile
from ..selection import DEFAULT_SELECT, check_select

# bump when a change to the training code changes the numbers a config produces
MTL_CONFIG_VERSION = 2  # 2: the kept epoch is the select rule's (default: class-balanced validation loss)
DATASETS = ("lidc", "derm7pt")
MODELS = ("gated", "hard")
OPTIMIZERS = ("sgd", "adam")
UNHASHED = ("data_dir", "derm7pt_root")


@dataclass(frozen=True)
class MTLConfig(ConfigDict):
    """Everything that decides a multi-task run's numbers (plus where its data lives)."""

    paths = UNHASHED

    profile: str = DEFAULT_PROFILE
    dataset: str = "lidc"  # "lidc" (the patch store) or "derm7pt" (a reader's release folder)
    source: str = "phantom"  # LIDC patch source
    tasks: tuple[str, ...] = ("all",)  # "all" = the nine characteristics (LIDC) or the eight Derm7pt columns
    multiclass: bool = False  # LIDC: ratings as classes instead of the binary rules
    model: str = "gated"  # "gated" (a branch per task + gated blocks) or "hard" (shared ResNet trunk, T heads)
    param_scale: float = 1.0  # gated: fraction of the parameters (widths scale by its square root)
    width: int = 8  # gated: channels of each branch's first stage
    n_stages: int = 3  # gated
    depth: int = 10  # hard baseline: ResNet depth
    trunk_width: int = 16  # hard baseline: trunk width (ResNet-10 at 16 has about the gated network's parameters)
    fusion_init: float = 100.0  # gated: start of the 1x1 fusion on the task's own maps (source: 100)
    gate_init: float = 0.0  # gated: start of the gate logits (sigmoid(0) = 0.5)
    k_per_label: int = 2  # examples drawn for every label of every task in a batch
    epochs: int = 20
    steps_per_epoch: int | None = None  # None: training examples / batch size, rounded up
    # Adam: with the source's fusion init of 100 and batch norm after every fusion, plain SGD
    # leaves the fusion weights where they start (see the chapter); Adam's steps do not shrink.
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-5  # the L2 penalty (added to the gradient, i.e. to the loss: not AdamW)
    focal_gamma: float = 2.0
    select: str = DEFAULT_SELECT  # the kept epoch's rule (lungcl.selection), mean over the tasks
    fold: int = 0
    seed: int = 0
    split_seed: int = 0
    context_slices: int = 0
    augment: bool = True
    image_px: int = 64  # Derm7pt images are resized to this side
    data_dir: str = "data"
    derm7pt_root: str | None = None

    def __post_init__(self) -> None:
        check_profile(self.profile)
        _check(self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        object.__setattr__(self, "tasks", self._resolve_tasks(self.tasks))
        _check(self.model in MODELS, f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        _check(self.optimizer in OPTIMIZERS,
               f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        _check(0 < self.param_scale <= 4, f"param_scale must be in (0, 4], got {self.param_scale:g}")
        _check(self.model == "gated" or self.param_scale == 1.0,
               "param_scale applies to the gated network only")
        for name in ("width", "trunk_width", "n_stages", "k_per_label", "epochs", "image_px"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps_per_epoch must be >= 1 or none")
        _check(self.lr > 0 and self.weight_decay >= 0 and self.focal_gamma >= 0,
               "need lr > 0, weight_decay >= 0 and focal_gamma >= 0")
        _check(0 <= self.fold <= 4, f"fold must be 0..4, got {self.fold}")
        check_select(self.select)
        for name in ("seed", "split_seed"):  # numpy's generators take no negative seed
            _check(getattr(self, name) >= 0, f"{name} must be an integer >= 0, got {getattr(self, name)}")
        _check(self.dataset != "derm7pt" or self.derm7pt_root is not None,
               "the derm7pt dataset needs its folder: --derm7pt DIR")
        _check(self.dataset != "derm7pt" or not self.multiclass,
               "--multiclass is for LIDC ratings; Derm7pt tasks are multi-class already")

    def _resolve_tasks(self, tasks: Any) -> tuple[str, ...]:
        from .derm7pt import DERM7PT_TASK_NAMES

        if isinstance(tasks, str):
            text = tasks
        else:
            text = ",".join(tasks)
        if self.dataset == "derm7pt":
            names = DERM7PT_TASK_NAMES if text.strip() in ("all", "") else tuple(
                s.strip() for s in text.split(",") if s.strip())
            bad = [n for n in names if n not in DERM7PT_TASK_NAMES]
            _check(not bad, f"unknown Derm7pt task(s) {', '.join(bad)}; choose from {', '.join(DERM7PT_TASK_NAMES)}")
            _check(len(set(names)) == len(names), "a task is named twice")
            return tuple(names)
        return tuple(t.name for t in resolve_tasks(text))

    @property
    def store(self) -> StoreRef | None:
        return StoreRef(self.data_dir, self.source, self.profile) if self.dataset == "lidc" else None

    @property
    def run_id(self) -> str:
        """sha256 of the canonical JSON of every hashed field (16 hex digits)."""
        return configs.hash_id(canonical_json(self))

    @property
    def label(self) -> str:
        kind = "multi-class" if self.multiclass else ("binary" if self.dataset == "lidc" else "derm7pt")
        scale = f" x{self.param_scale:g} params" if self.param_scale != 1 else ""
        return (f"{self.model} {kind}{scale} ({len(self.tasks)} tasks, {self.optimizer}) "
                f"fold{self.fold} seed{self.seed}")


def canonical_json(config: MTLConfig) -> str:
    """The hashed text: sorted keys, no paths, with the multi-task config version and the batch
    pipeline's version (a new random stream of the augmentation gives new ids)."""
    from ..data.batches import PIPELINE_VERSION

    return configs.canonical_json(config, UNHASHED, extra={"mtl_config_version": MTL_CONFIG_VERSION,
                                                           "pipeline_version": PIPELINE_VERSION})


def default_mtl_config(profile: str = DEFAULT_PROFILE, **overrides: Any) -> MTLConfig:
    """The profile's configuration with ``overrides`` (``None`` values are ignored unless the field allows None)."""
    check_profile(profile)
    return MTLConfig(**configs.merge_settings(MTLConfig, {"profile": profile, **MTL_TRAINING[profile]}, overrides))


def parse_mtl_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.05", "epochs=20"]`` -> typed field values; bad key or value -> LungclError.

    Task lists stay text: the config resolves them, as it knows the dataset.
    """
    return configs.parse_overrides(MTLConfig, items)
