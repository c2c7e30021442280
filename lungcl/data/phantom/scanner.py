"""The phantom's scanner: point spread (in-plane and along z) and correlated noise, per scan.

Every scan gets its own settings, drawn from the scan's identity, so that the
nodules of one scan share a scanner as they would in LIDC-IDRI. Figures follow
``CT_APPEARANCE.md``: in-plane PSF 0.7-1.2 mm FWHM, along z about the slice
thickness, noise SD 20-60 HU correlated by the reconstruction kernel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.355
TRUNCATE = 3.0  # Gaussian kernels are cut at 3 sigma


@dataclass(frozen=True)
class Scanner:
    """One scan's imaging settings (mm and HU)."""

    psf_fwhm_mm: float  # in-plane point spread
    slice_fwhm_mm: float  # slice sensitivity profile along z, ~ slice thickness
    noise_sd_hu: float  # standard deviation of the image noise
    noise_corr_mm: float  # in-plane Gaussian correlation length of the noise (kernel)
    lung_hu: float  # mean aerated-lung density of this patient at this inspiration

    @property
    def sigma_mm(self) -> np.ndarray:
        """Gaussian sigma (i, j, k axes) of the point spread, in mm."""
        s = self.psf_fwhm_mm / FWHM_PER_SIGMA
        return np.array([s, s, self.slice_fwhm_mm / FWHM_PER_SIGMA])

    @property
    def psf_cov(self) -> np.ndarray:
        """Covariance (mm^2) of the point spread function, axes (i, j, k)."""
        return np.diag(self.sigma_mm ** 2)

    def to_dict(self) -> dict:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def scan_rng(seed: int, scan: dict) -> np.random.Generator:
    """A generator that depends only on the phantom seed and the scan's identity."""
    key = str(scan.get("series_uid") or scan["scan_id"]).encode()
    return np.random.default_rng([int(seed), zlib.crc32(key), 7])


def draw_scanner(scan: dict, seed: int) -> Scanner:
    """The scanner of one scan: slice profile from its thickness, the rest drawn at random."""
    rng = scan_rng(seed, scan)
    thickness = float(scan.get("slice_thickness") or scan.get("slice_spacing") or 1.0)
    spacing = float(scan.get("slice_spacing") or thickness)
    # the slice profile is at least the sampling step (reconstruction interpolates between slices)
    slice_fwhm = max(thickness, 0.8 * spacing, 0.6)
    # low-dose and standard-dose scans: noise log-uniform over 20..60 HU
    noise = float(np.exp(rng.uniform(np.log(20.0), np.log(60.0))))
    return Scanner(psf_fwhm_mm=float(rng.uniform(0.7, 1.2)), slice_fwhm_mm=slice_fwhm,
                   noise_sd_hu=noise, noise_corr_mm=float(rng.uniform(0.35, 0.7)),
                   lung_hu=float(rng.uniform(-880.0, -820.0)))


def noise_gain(sigma_vox: tuple[float, ...], truncate: float = TRUNCATE) -> float:
    """Factor by which white noise's SD shrinks under a separable Gaussian filter (ndimage's kernel)."""
    gain = 1.0
    for s in sigma_vox:
        if s < 1e-3:
            continue
        radius = int(truncate * s + 0.5)
        x = np.arange(-radius, radius + 1, dtype=float)
        w = np.exp(-0.5 * (x / s) ** 2)
        w /= w.sum()
        gain *= float(np.sqrt(np.sum(w ** 2)))
    return gain


def blur_sigma_vox(scanner: Scanner, pixel_spacing: float, slice_step_mm: float) -> tuple[float, ...]:
    """The point spread as voxel sigmas (i, j, k) for a grid of this spacing."""
    s = scanner.sigma_mm
    return (s[0] / pixel_spacing, s[1] / pixel_spacing, s[2] / max(slice_step_mm, 1e-3))


def blur(volume: np.ndarray, sigma_vox: tuple[float, ...]) -> np.ndarray:
    """Gaussian point spread on a native-grid volume (float32, in place where possible)."""
    return ndimage.gaussian_filter(volume, sigma=sigma_vox, mode="nearest", truncate=TRUNCATE)


def correlated_noise(shape: tuple[int, ...], scanner: Scanner, pixel_spacing: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise with the scanner's SD, correlated in-plane like a reconstruction kernel."""
    # uniform white noise (SD 1/sqrt(12)) is Gaussian enough once smoothed, and 6x cheaper to draw
    white = rng.random(shape, dtype=np.float32)
    white -= np.float32(0.5)
    s = scanner.noise_corr_mm / pixel_spacing
    noise = ndimage.gaussian_filter(white, sigma=(s, s, 0.0), mode="wrap", truncate=TRUNCATE)
    gain = noise_gain((s, s)) / np.sqrt(12.0)
    noise *= np.float32(scanner.noise_sd_hu / gain)
    return noise
