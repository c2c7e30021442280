"""Shared fixtures: the cached LIDC nodule table and a smoke-profile phantom store.

The nodule table (clustering all 1018 scans, ~2 minutes) is built once into
the repository's ``data/`` folder, the same cache ``make book`` uses, and
linked into each test session's temporary data folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def nodule_cache() -> Path:
    """The repository's data folder, with the nodule table built if missing."""
    from lungcl.data.nodules import cache_for, load_nodule_table

    data = REPO / "data"
    load_nodule_table(data, progress=False)
    return cache_for(data).folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, nodule_cache: Path) -> Path:
    """A fresh data folder for this test session that shares the cached nodule table."""
    d = tmp_path_factory.mktemp("data")
    (d / nodule_cache.name).symlink_to(nodule_cache, target_is_directory=True)
    return d


@pytest.fixture(scope="session")
def nodules(nodule_cache: Path):
    from lungcl.data.nodules import load_nodule_table

    return load_nodule_table(REPO / "data", build=False)


@pytest.fixture(scope="session")
def smoke_store(data_dir: Path):
    """The phantom store of the smoke profile, built once per session."""
    from lungcl.data.prepare import prepare_store

    return prepare_store(data_dir, "phantom", "smoke", workers=2, progress=False)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread: the tests' small models run faster so on a busy 2-core machine."""
    import torch

    torch.set_num_threads(1)
    yield
