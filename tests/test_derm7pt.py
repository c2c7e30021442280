"""The Derm7pt adapter on a tiny fixture written in the release's format (meta/, images/)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungcl.errors import LungclError
from lungcl.mtl.derm7pt import (DERM7PT_TASK_NAMES, DERM7PT_TASKS, Derm7ptDataset, encode_labels,
                                read_derm7pt)

# (diagnosis, pigment_network, streaks, pigmentation, regression_structures, dots_and_globules,
#  blue_whitish_veil, vascular_structures) -- raw release strings
ROWS = [
    ("basal cell carcinoma", "absent", "absent", "absent", "absent", "absent", "absent", "arborizing"),
    ("clark nevus", "typical", "regular", "diffuse regular", "absent", "regular", "absent", "absent"),
    ("melanoma (in situ)", "atypical", "irregular", "localized irregular", "blue areas", "irregular",
     "present", "dotted"),
    ("seborrheic keratosis", "absent", "absent", "absent", "absent", "absent", "absent", "hairpin"),
    ("dermatofibroma", "typical", "absent", "localized regular", "white areas", "regular", "absent", "absent"),
    ("melanoma", "atypical", "irregular", "diffuse irregular", "combinations", "irregular", "present",
     "linear irregular"),
    ("reed or spitz nevus", "typical", "regular", "absent", "absent", "regular", "absent", "comma"),
    ("lentigo", "absent", "absent", "diffuse regular", "absent", "absent", "absent", "absent"),
]
# the same rows as class numbers in DERM7PT_TASK_NAMES order
EXPECTED = [
    [0, 0, 0, 0, 0, 0, 0, 1],
    [1, 1, 1, 1, 0, 1, 0, 0],
    [2, 2, 2, 2, 1, 2, 1, 2],
    [4, 0, 0, 0, 0, 0, 0, 1],
    [3, 1, 0, 1, 1, 1, 0, 0],
    [2, 2, 2, 2, 1, 2, 1, 2],
    [1, 1, 1, 0, 0, 1, 0, 1],
    [3, 0, 0, 1, 0, 0, 0, 0],
]
COLUMNS = ("diagnosis", "pigment_network", "streaks", "pigmentation", "regression_structures",
           "dots_and_globules", "blue_whitish_veil", "vascular_structures")


def write_release(root: Path, rows=ROWS, size=(80, 60)) -> Path:
    """A tiny release: meta/meta.csv, meta/{train,valid,test}_indexes.csv, images/<folder>/<name>.jpg."""
    (root / "meta").mkdir(parents=True)
    records = []
    for i, row in enumerate(rows):
        rel = f"F{i % 2}/case{i:03d}.png"
        (root / "images" / f"F{i % 2}").mkdir(parents=True, exist_ok=True)
        colour = (30 * i % 256, 200 - 20 * i, 90)
        Image.new("RGB", size, colour).save(root / "images" / rel)
        records.append({"case_num": i + 1, **dict(zip(COLUMNS, row)), "seven_point_score": 0,
                        "level_of_diagnostic_difficulty": "low", "elevation": "flat", "location": "back",
                        "sex": "female", "management": "excision", "clinic": rel.replace("case", "clin"),
                        "derm": rel})
    pd.DataFrame(records).to_csv(root / "meta" / "meta.csv", index=False)
    n = len(rows)
    parts = {"train": list(range(0, n - 3)), "valid": [n - 3, n - 2], "test": [n - 1]}
    for name, idx in parts.items():
        pd.DataFrame({"indexes": idx}).to_csv(root / "meta" / f"{name}_indexes.csv", index=False)
    return root


def test_label_groups_give_the_sources_24_labels():
    assert DERM7PT_TASK_NAMES == ("diagnosis", "pigment_network", "streaks", "pigmentation",
                                  "regression_structures", "dots_and_globules", "blue_whitish_veil",
                                  "vascular_structures")
    assert sum(len(v) for v in DERM7PT_TASKS.values()) == 24
    assert [a for a, _ in DERM7PT_TASKS["diagnosis"]] == ["BCC", "NEV", "MEL", "MISC", "SK"]


def test_round_trip(tmp_path):
    root = write_release(tmp_path / "release_v0")
    rel = read_derm7pt(root)
    assert rel.labels.tolist() == EXPECTED
    assert rel.splits["train"].tolist() == [0, 1, 2, 3, 4] and rel.splits["test"].tolist() == [7]
    ds = Derm7ptDataset(rel, "valid", size=16, crop_px=5)
    assert len(ds) == 2
    x, y, index = ds[1]
    assert x.shape == (3, 16, 16) and str(x.dtype) == "torch.float32"
    colour = np.array([30 * 6 % 256, 200 - 20 * 6, 90]) / 255.0
    np.testing.assert_allclose(x.mean(dim=(1, 2)).numpy(), colour, atol=1e-6)
    assert y.tolist() == EXPECTED[6] and index == 1
    train = Derm7ptDataset(rel, "train", size=16, augment=True, seed=3)
    a, ya = train.batch([2, 2, 4], key=5)
    b, _ = train.batch([2, 2, 4], key=5)
    assert a.shape == (3, 3, 16, 16) and a.equal(b)  # seeded augmentation
    assert ya.tolist() == [EXPECTED[2], EXPECTED[2], EXPECTED[4]]


def test_missing_labels_are_minus_one(tmp_path):
    rows = [list(r) for r in ROWS]
    rows[0][2] = ""
    root = write_release(tmp_path / "r", rows=rows)
    rel = read_derm7pt(root)
    assert rel.labels[0, DERM7PT_TASK_NAMES.index("streaks")] == -1


def test_missing_path_is_named(tmp_path):
    with pytest.raises(LungclError, match="Derm7pt folder not found"):
        read_derm7pt(tmp_path / "nowhere")
    root = write_release(tmp_path / "r")
    (root / "meta" / "meta.csv").unlink()
    with pytest.raises(LungclError, match=r"meta table not found: .*meta\.csv"):
        read_derm7pt(root)


def test_missing_column_is_named(tmp_path):
    root = write_release(tmp_path / "r")
    meta = pd.read_csv(root / "meta" / "meta.csv").drop(columns=["streaks"])
    meta.to_csv(root / "meta" / "meta.csv", index=False)
    with pytest.raises(LungclError, match="has no column 'streaks'"):
        read_derm7pt(root)


def test_missing_index_file_image_and_bad_values(tmp_path):
    root = write_release(tmp_path / "a")
    (root / "meta" / "valid_indexes.csv").unlink()
    with pytest.raises(LungclError, match="valid index file not found"):
        read_derm7pt(root)
    root = write_release(tmp_path / "b")
    (root / "images" / "F1" / "case003.png").unlink()
    with pytest.raises(LungclError, match=r"image of meta.csv row 3 not found: .*case003\.png"):
        read_derm7pt(root)
    root = write_release(tmp_path / "c")
    pd.DataFrame({"idx": [0]}).to_csv(root / "meta" / "test_indexes.csv", index=False)
    with pytest.raises(LungclError, match="has no column 'indexes'"):
        read_derm7pt(root)
    meta = pd.DataFrame({t: ["absent"] for t in COLUMNS} | {"diagnosis": ["not a disease"]})
    with pytest.raises(LungclError, match="'diagnosis' has value 'not a disease'"):
        encode_labels(meta)


def test_gated_network_trains_on_the_fixture(tmp_path):
    """The whole path a Derm7pt reader takes: release folder -> multi-task data -> gated network -> record."""
    from lungcl.mtl.config import default_mtl_config
    from lungcl.mtl.train import train_mtl

    root = write_release(tmp_path / "release")
    config = default_mtl_config("smoke", dataset="derm7pt", derm7pt_root=str(root), image_px=16,
                                epochs=1, steps_per_epoch=1)
    record, checkpoint = train_mtl(config, progress=False)
    assert record["tasks"] == list(DERM7PT_TASK_NAMES)
    assert record["n_classes"] == [5, 3, 3, 3, 2, 3, 2, 3]
    assert np.array(record["sharing"]["overall"]).shape == (8, 8)
    assert record["metrics"]["diagnosis"]["test"]["n"] == 1
    assert "model" in checkpoint
