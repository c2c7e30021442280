"""The patch store: one 1 mm HU crop + consensus mask per nodule, on disk, checksummed.

Layout of ``<data_dir>/store/<source>-<profile>/``::

    patches/<nodule_id>.npz   hu (int16, S^3, z-y-x), mask (bool), provenance (JSON bytes)
    manifest.json             version, settings, per-nodule checksum + patient, failed scans
    central-ctx<C>-<digest>.npy  every nodule's central slices (a cache the runs read; rebuilt when
                              it does not match the manifest, see :func:`damaged_caches`)

Each patch file is written atomically, so an interrupted ``prepare`` resumes
from the files present; the manifest is written last, so a store without one
is incomplete and is never read by the datasets.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import atomic_write, atomic_write_json, npz_bytes
from ..errors import LungclError, StoreVersionError
from ..profiles import DataSettings

STORE_VERSION = 1


def store_folder(data_dir: str | Path, source: str, profile: str) -> Path:
    return Path(data_dir) / "store" / f"{source}-{profile}"


def patch_bytes(hu: np.ndarray, mask: np.ndarray, provenance: dict) -> bytes:
    """The .npz bytes of one nodule's patch (deterministic for identical inputs)."""
    hu16 = np.clip(np.rint(hu), -32768, 32767).astype(np.int16)
    prov = np.frombuffer(json.dumps(provenance, sort_keys=True).encode(), dtype=np.uint8)
    return npz_bytes(hu=hu16, mask=mask.astype(bool), provenance=prov)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]


def read_patch(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(hu int16, mask bool, provenance) of one patch file; a damaged file -> LungclError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            hu, mask = z["hu"], z["mask"]
            provenance = json.loads(z["provenance"].tobytes().decode())
    except Exception as exc:  # numpy, zipfile and zlib raise many kinds for a damaged file
        raise LungclError(f"corrupt patch file {path}: {_one_line(exc)}; delete it and run "
                          f"`lungcl data prepare` again (missing files are rendered anew)") from exc
    if hu.ndim != 3 or mask.shape != hu.shape or not isinstance(provenance, dict):
        raise LungclError(f"corrupt patch file {path}: unexpected content (hu {hu.shape}, "
                          f"mask {mask.shape}); delete it and run `lungcl data prepare` again")
    return hu, mask, provenance


@dataclass
class PatchStore:
    """A finished patch store: its manifest and its files."""

    folder: Path
    manifest: dict

    @property
    def source(self) -> str:
        return self.manifest["source"]

    @property
    def settings(self) -> DataSettings:
        return DataSettings(**self.manifest["settings"])

    @property
    def nodule_ids(self) -> list[str]:
        return sorted(self.manifest["nodules"])

    @property
    def failures(self) -> dict[str, str]:
        return self.manifest.get("failures", {})

    @property
    def provenance(self) -> dict:
        """What the book prints about where the patches came from."""
        m = self.manifest
        return {"source": m["source"], "source_version": m.get("source_version"),
                "profile": m["settings"]["profile"],
                "store_version": m["store_version"], "lungcl_version": m["lungcl_version"],
                "pylidc_version": m["pylidc_version"], "settings": m["settings"],
                "n_nodules": len(m["nodules"]), "n_failed_scans": len(m.get("failures", {})),
                "manifest_sha256": m.get("digest")}

    def path(self, nodule_id: str) -> Path:
        return self.folder / "patches" / f"{nodule_id}.npz"

    def load(self, nodule_id: str) -> tuple[np.ndarray, np.ndarray, dict]:
        return read_patch(self.path(nodule_id))

    def verify(self) -> list[str]:
        """Nodule ids whose file is missing or does not match its checksum."""
        bad = []
        for nid, entry in self.manifest["nodules"].items():
            p = self.path(nid)
            if not p.exists() or sha256_file(p) != entry["sha256"]:
                bad.append(nid)
        return bad


CENTRAL_CACHES = "central-ctx*-*.npy"


def central_cache_path(store: PatchStore, context_slices: int) -> Path:
    return store.folder / f"central-ctx{context_slices}-{store.manifest['digest'][:12]}.npy"


def cache_problem(path: Path, store: PatchStore) -> str | None:
    """Why a central-slices cache does not match the store's manifest (None: it does)."""
    if not path.name.endswith(f"-{store.manifest['digest'][:12]}.npy"):
        return "made for another build of the store"
    try:
        rows = np.load(path, mmap_mode="r").shape[0]  # the file's size must fit its header's shape
    except (ValueError, OSError, EOFError, IndexError) as exc:
        return f"unreadable or truncated: {_one_line(exc)}"
    if rows != len(store.manifest["nodules"]):
        return f"{rows} rows for {len(store.manifest['nodules'])} nodules"
    return None


def damaged_caches(store: PatchStore) -> dict[Path, str]:
    """The store's central-slices caches that do not match its manifest, each with why."""
    found = {p: cache_problem(p, store) for p in sorted(store.folder.glob(CENTRAL_CACHES))}
    return {p: why for p, why in found.items() if why is not None}


def central_slices(store: PatchStore, context_slices: int = 0) -> tuple[list[str], np.ndarray]:
    """(nodule ids, int16 array (N, 1 + 2*context, S, S)) of every nodule's central slices.

    Cached next to the manifest (keyed by its digest) so that many runs load it once. A cache that
    does not match the manifest (e.g. truncated) is an error that says to run ``lungcl data prepare``,
    which rebuilds it.
    """
    cache = central_cache_path(store, context_slices)
    ids = store.nodule_ids
    if cache.exists():
        problem = cache_problem(cache, store)
        if problem is not None:
            raise LungclError(f"the patch store's cache {cache} does not match its manifest ({problem}); run "
                              f"`lungcl data prepare` (with this store's --data-dir, --source and --profile) "
                              f"to rebuild it")
        return ids, np.asarray(np.load(cache, mmap_mode="r"))
    side = store.settings.crop_mm
    c = side // 2
    lo, hi = c - context_slices, c + context_slices + 1
    if lo < 0:
        raise LungclError(f"context_slices={context_slices} is larger than the crop allows")
    arr = np.stack([store.load(nid)[0][lo:hi] for nid in ids])
    atomic_write(cache, lambda p: np.save(p.open("wb"), arr))
    return ids, arr


def rebuild_damaged_caches(store: PatchStore) -> None:
    """Each cache that does not match the manifest deleted (said on stderr) and, if current, built again."""
    for path, why in damaged_caches(store).items():
        print(f"lungcl: {path} does not match the store's manifest ({why}); "
              f"{'deleting' if why.startswith('made for another') else 'rebuilding'} it", file=sys.stderr)
        path.unlink()
        if not why.startswith("made for another"):
            central_slices(store, int(re.match(r"central-ctx(\d+)-", path.name).group(1)))


def read_manifest(folder: Path) -> dict | None:
    """The store's manifest, None if there is none; unreadable or malformed -> StoreVersionError."""
    path = folder / "manifest.json"
    if folder.exists() and not folder.is_dir():
        raise LungclError(f"{folder} is a file, not a patch store folder; move it away")
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise StoreVersionError(f"{path} is corrupt ({_one_line(exc)}); "
                                f"run `lungcl data prepare --rebuild`") from exc
    keys = ("store_version", "lungcl_version", "source", "settings", "pylidc_version", "nodules")
    if (not isinstance(manifest, dict) or any(k not in manifest for k in keys)
            or not isinstance(manifest.get("nodules"), dict)
            or not isinstance(manifest.get("settings"), dict)
            or not isinstance(manifest.get("failures", {}), dict)):
        raise StoreVersionError(f"{path} is corrupt (not a lungcl store manifest); "
                                f"run `lungcl data prepare --rebuild`")
    if not all(isinstance(e, dict) and isinstance(e.get("sha256"), str)
               for e in manifest["nodules"].values()):
        raise StoreVersionError(f"{path} is corrupt (a nodule entry lacks its checksum); "
                                f"run `lungcl data prepare --rebuild`")
    return manifest


def store_digest(data_dir: str | Path, source: str, profile: str) -> str | None:
    """The digest of the store's manifest: a rebuilt store has another (None: no readable store).

    What records (their provenance's ``manifest_sha256``) and the book's chapter stamps are checked
    against. Remembered per manifest file state, as a grid asks once per run (the cpu manifest is MBs).
    """
    path = store_folder(data_dir, source, profile) / "manifest.json"
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _DIGESTS:
        try:
            manifest = read_manifest(path.parent)
        except LungclError:
            manifest = None
        _DIGESTS[key] = None if manifest is None else manifest.get("digest")
    return _DIGESTS[key]


_DIGESTS: dict[tuple[str, int, int], str | None] = {}


def write_manifest(folder: Path, manifest: dict) -> None:
    body = {k: v for k, v in manifest.items() if k != "digest"}
    manifest["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    atomic_write_json(folder / "manifest.json", manifest)


def new_manifest(source: str, source_version: str, settings: DataSettings, pylidc_version: str) -> dict:
    return {"store_version": STORE_VERSION, "lungcl_version": __version__, "source": source,
            "source_version": source_version, "settings": settings.to_dict(),
            "pylidc_version": pylidc_version, "nodules": {}, "failures": {}}


def is_compatible(manifest: dict, source: str, source_version: str, settings: DataSettings) -> bool:
    """Whether a store was made by this store format, source (and its version) and settings."""
    return (manifest.get("store_version") == STORE_VERSION and manifest.get("source") == source
            and manifest.get("source_version") == source_version
            and manifest.get("settings") == settings.to_dict())


def check_data_dir(data_dir: str | Path) -> Path:
    """``data_dir`` if it is a folder (or does not exist yet); a file there -> LungclError."""
    path = Path(data_dir)
    if path.exists() and not path.is_dir():
        raise LungclError(f"--data-dir {path} is a file, not a folder")
    return path


def open_store(data_dir: str | Path, source: str, profile: str) -> PatchStore:
    """The finished store for (source, profile); a clear error if missing, stale, foreign or empty."""
    from ..profiles import data_settings
    from .sources import source_version

    folder = store_folder(check_data_dir(data_dir), source, profile)
    manifest = read_manifest(folder)
    hint = f"run `lungcl data prepare --source {source} --profile {profile} --data-dir {data_dir}`"
    if manifest is None:
        raise LungclError(f"no {source} patch store for profile {profile} in {data_dir}; {hint}")
    if manifest.get("store_version") != STORE_VERSION:
        raise StoreVersionError(f"the patch store in {folder} was written by store version "
                                f"{manifest.get('store_version')} (this lungcl reads {STORE_VERSION}); {hint}")
    if not is_compatible(manifest, source, source_version(source), data_settings(profile)):
        raise StoreVersionError(f"the patch store in {folder} was made from another source, source "
                                f"version or profile settings ({manifest.get('source')}, "
                                f"{manifest.get('source_version')}); {hint} --rebuild")
    if not manifest["nodules"]:
        raise LungclError(f"the patch store in {folder} holds no nodule "
                          f"({len(manifest.get('failures', {}))} scans skipped); {hint} --rebuild")
    return PatchStore(folder, manifest)
