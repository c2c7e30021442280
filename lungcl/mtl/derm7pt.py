"""Derm7pt (Kawahara et al. 2018): the seven-point checklist data set, read from a reader's own copy.

Derm7pt cannot be downloaded here (http://derm.cs.sfu.ca, registration). A
reader who has the release folder runs the gated network on it with
``lungcl mtl --derm7pt DIR``. The release's layout::

    DIR/meta/meta.csv                       one row per case; the columns below
    DIR/meta/{train,valid,test}_indexes.csv column ``indexes``: row numbers of meta.csv
    DIR/images/<derm column value>          the dermoscopic image of the row

Tasks and label groups: the diagnosis and the seven checklist criteria with
infrequent labels grouped as in the release's reference code
(``derm7pt.dataset.Derm7PtDatasetGroupInfrequent``, github.com/jeremykawahara/derm7pt),
which gives the source's 24 labels: diagnosis 5 (BCC, NEV, MEL, MISC, SK),
pigment network 3, streaks 3, pigmentation 3, regression structures 2, dots
and globules 3, blue-whitish veil 2, vascular structures 3. (The review counts
"seven tasks", but its list and its 24 labels need all eight columns.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import LungclError
from .sampler import MISSING

# column -> ordered label groups (abbreviation, the meta.csv strings that map to it)
DERM7PT_TASKS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "diagnosis": (
        ("BCC", ("basal cell carcinoma",)),
        ("NEV", ("nevus", "blue nevus", "clark nevus", "combined nevus", "congenital nevus", "dermal nevus",
                 "recurrent nevus", "reed or spitz nevus")),
        ("MEL", ("melanoma", "melanoma (in situ)", "melanoma (less than 0.76 mm)", "melanoma (0.76 to 1.5 mm)",
                 "melanoma (more than 1.5 mm)", "melanoma metastasis")),
        ("MISC", ("DF/LT/MLS/MISC", "dermatofibroma", "lentigo", "melanosis", "miscellaneous",
                  "vascular lesion")),
        ("SK", ("seborrheic keratosis",)),
    ),
    "pigment_network": (("ABS", ("absent",)), ("TYP", ("typical",)), ("ATP", ("atypical",))),
    "streaks": (("ABS", ("absent",)), ("REG", ("regular",)), ("IR", ("irregular",))),
    "pigmentation": (
        ("ABS", ("absent",)),
        ("REG", ("regular", "diffuse regular", "localized regular")),
        ("IR", ("irregular", "diffuse irregular", "localized irregular")),
    ),
    "regression_structures": (
        ("ABS", ("absent",)),
        ("PRS", ("present", "blue areas", "white areas", "combinations")),
    ),
    "dots_and_globules": (("ABS", ("absent",)), ("REG", ("regular",)), ("IR", ("irregular",))),
    "blue_whitish_veil": (("ABS", ("absent",)), ("PRS", ("present",))),
    "vascular_structures": (
        ("ABS", ("absent",)),
        ("REG", ("regular", "arborizing", "comma", "hairpin", "within regression", "wreath")),
        ("IR", ("dotted/irregular", "dotted", "linear irregular")),
    ),
}
DERM7PT_TASK_NAMES = tuple(DERM7PT_TASKS)
IMAGE_COLUMNS = ("derm", "clinic")
SPLIT_FILES = {"train": "train_indexes.csv", "valid": "valid_indexes.csv", "test": "test_indexes.csv"}


def n_classes(task: str) -> int:
    return len(DERM7PT_TASKS[task])


def label_names(task: str) -> list[str]:
    return [abbrev for abbrev, _ in DERM7PT_TASKS[task]]


def encode_labels(meta: pd.DataFrame, tasks: tuple[str, ...] = DERM7PT_TASK_NAMES) -> np.ndarray:
    """(rows, tasks) int64 class numbers; an empty cell is -1 (no label), an unknown string an error."""
    out = np.full((len(meta), len(tasks)), MISSING, dtype=np.int64)
    for t, task in enumerate(tasks):
        lookup = {name: k for k, (_, names) in enumerate(DERM7PT_TASKS[task]) for name in names}
        for row, value in enumerate(meta[task].tolist()):
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
                continue
            key = str(value).strip()
            if key not in lookup:
                raise LungclError(f"Derm7pt meta.csv row {row}: column {task!r} has value {key!r}, "
                                  f"not one of the release's labels ({', '.join(sorted(lookup))})")
            out[row, t] = lookup[key]
    return out


@dataclass
class Derm7ptRelease:
    """The release's table (one row per case), its label matrix and its train / valid / test rows."""

    root: Path
    meta: pd.DataFrame
    labels: np.ndarray  # (rows, tasks), -1 = no label
    splits: dict[str, np.ndarray]
    tasks: tuple[str, ...] = DERM7PT_TASK_NAMES
    image_column: str = "derm"
    provenance: dict = field(default_factory=dict)

    def image_path(self, row: int) -> Path:
        return self.root / "images" / str(self.meta[self.image_column].iloc[row])


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise LungclError(f"Derm7pt {what} not found: {path} (expected the release's layout: "
                          f"meta/meta.csv, meta/*_indexes.csv, images/)")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LungclError(f"cannot read Derm7pt {what} {path}: {exc}") from exc


def read_derm7pt(root: str | Path, tasks: tuple[str, ...] = DERM7PT_TASK_NAMES,
                 image_column: str = "derm", check_images: bool = True) -> Derm7ptRelease:
    """Read and check a Derm7pt release folder; any missing file, column or image is a LungclError naming it."""
    root = Path(root)
    if not root.is_dir():
        raise LungclError(f"Derm7pt folder not found: {root}")
    unknown = [t for t in tasks if t not in DERM7PT_TASKS]
    if unknown:
        raise LungclError(f"unknown Derm7pt task(s) {', '.join(unknown)}; choose from {', '.join(DERM7PT_TASKS)}")
    if image_column not in IMAGE_COLUMNS:
        raise LungclError(f"image column must be one of {', '.join(IMAGE_COLUMNS)}, got {image_column!r}")
    meta = _read_csv(root / "meta" / "meta.csv", "meta table")
    missing = [c for c in (*tasks, image_column) if c not in meta.columns]
    if missing:
        raise LungclError(f"Derm7pt meta.csv ({root / 'meta' / 'meta.csv'}) has no column "
                          f"{', '.join(repr(c) for c in missing)}")
    labels = encode_labels(meta, tasks)
    splits: dict[str, np.ndarray] = {}
    for name, filename in SPLIT_FILES.items():
        table = _read_csv(root / "meta" / filename, f"{name} index file")
        if "indexes" not in table.columns:
            raise LungclError(f"Derm7pt {root / 'meta' / filename} has no column 'indexes'")
        idx = table["indexes"].to_numpy()
        if not np.issubdtype(idx.dtype, np.integer) or (len(idx) and (idx.min() < 0 or idx.max() >= len(meta))):
            raise LungclError(f"Derm7pt {root / 'meta' / filename}: indexes must be row numbers 0..{len(meta) - 1}")
        splits[name] = idx.astype(np.int64)
    seen = np.concatenate(list(splits.values()))
    if len(set(seen.tolist())) != len(seen):
        raise LungclError(f"Derm7pt index files in {root / 'meta'} list a row in more than one split")
    release = Derm7ptRelease(root, meta, labels, splits, tuple(tasks), image_column,
                             provenance={"source": "derm7pt", "root": str(root), "rows": len(meta),
                                         "image_column": image_column})
    if check_images:
        for row in sorted(seen.tolist()):
            if not release.image_path(row).is_file():
                raise LungclError(f"Derm7pt image of meta.csv row {row} not found: {release.image_path(row)}")
    return release


def load_image(path: Path, size: int, crop_px: int = 0) -> np.ndarray:
    """RGB image as float32 (3, size, size) in [0, 1]: border crop, then bilinear resize (PIL)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if crop_px > 0 and min(im.size) > 2 * crop_px:
                im = im.crop((crop_px, crop_px, im.size[0] - crop_px, im.size[1] - crop_px))
            im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except OSError as exc:
        raise LungclError(f"cannot read Derm7pt image {path}: {exc}") from exc
    return arr.transpose(2, 0, 1).copy()


class Derm7ptDataset(Dataset):
    """One split's cases: items are (image float32 (3, size, size), labels int64 (tasks,), row index).

    Images are read once and kept in memory (the release is ~1000 cases). Training
    augmentation: the 8 flips/transposes of the square, seeded per (seed, epoch, item).
    """

    def __init__(self, release: Derm7ptRelease, split: str, size: int = 64, crop_px: int = 25,
                 augment: bool = False, seed: int = 0):
        if split not in release.splits:
            raise LungclError(f"unknown Derm7pt split {split!r}; choose one of {', '.join(release.splits)}")
        self.rows = release.splits[split]
        self.labels = release.labels[self.rows]
        self.patient_ids = self.rows.copy()  # one case per lesion image
        self.images = np.stack([load_image(release.image_path(int(r)), size, crop_px) for r in self.rows]) \
            if len(self.rows) else np.zeros((0, 3, size, size), np.float32)
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices: Sequence[int], key: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of ``indices``; the augmentation is seeded by (seed, epoch, key)."""
        idx = np.asarray(indices, dtype=np.int64)
        x = self.images[idx]
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, int(key)])
            x = np.stack([_dihedral(img, int(rng.integers(8))) for img in x]) if len(x) else x
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(self.labels[idx])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y = self.batch([index], key=index)
        return x[0], y[0], index


def _dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations / reflections of a (C, H, W) square image."""
    out = np.rot90(img, k % 4, axes=(1, 2))
    return out[:, :, ::-1] if k >= 4 else out
