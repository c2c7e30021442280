"""Named profiles: how big the data and the experiments are.

``smoke`` runs in seconds (tests, CI), ``cpu`` is the book's default (a laptop
CPU in minutes), ``paper`` is the thesis's scale (ResNet-101, a GPU).
Data settings live here; training settings are in ``lungcl.experiments.config``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import LungclError

PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class DataSettings:
    """What the patch store holds and how patches are cut from it."""

    profile: str
    crop_mm: int  # side of the stored isotropic 1 mm crop (voxels = mm)
    patch_px: int  # side of the 2D patch fed to the network
    max_patients: int | None  # None = every LIDC patient; smoke uses a subset
    phantom_seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


_DATA = {
    "smoke": DataSettings("smoke", crop_mm=32, patch_px=24, max_patients=150),
    "cpu": DataSettings("cpu", crop_mm=48, patch_px=32, max_patients=None),
    "paper": DataSettings("paper", crop_mm=64, patch_px=64, max_patients=None),
}


def check_profile(name: str) -> str:
    if name not in PROFILES:
        raise LungclError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def data_settings(profile: str) -> DataSettings:
    """The data settings of a named profile."""
    return _DATA[check_profile(profile)]
