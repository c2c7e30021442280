"""What a patch source is: the protocol every source follows and the types it hands back.

Kept apart from the registry (:mod:`lungcl.data.sources`), which imports the
sources themselves: the sources import this module only, so no import runs in
a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..profiles import DataSettings
from .geometry import NativeRegion
from .nodules import ReaderMasks


class ScanError(Exception):
    """One scan could not be read; it is reported and skipped, the others go on."""


@dataclass
class RenderedNodule:
    """A nodule's HU region in its scan's grid, and where the values came from."""

    nodule_id: str
    region: NativeRegion
    provenance: dict = field(default_factory=dict)


class PatchSource(Protocol):
    name: str

    def render_scan(self, scan: dict, nodules: list[dict], masks: ReaderMasks,
                    settings: DataSettings) -> list[RenderedNodule]:
        """One region per nodule of ``scan``; raise ScanError if the scan cannot be read."""
        ...
