"""The tune records behind the profiles' default lambdas, shipped with the package.

``lungcl tune --order ABC --method M --profile P`` (fold 0, seed 0) writes a tune record (the whole
validation curve and its pick, :mod:`.tune`); the record of the run that set a profile's default is
copied to ``lungcl/reference/tuned/<profile>_<method>.json`` so that the book can show the curve the
default came from without re-training it, and a test checks that the default IS that pick. EWC with
another Fisher than the exact one (``--set fisher=sampled`` ...) is tuned the same way and shipped as
``<profile>_ewc_fisher_<variant>.json``: the analysis chapter runs each variant at its own pick.
A tune record names the configuration version and checkpoint rule (``select``) of its runs and holds their
base configuration; where any of these is not that of the book's runs (:func:`stale_tunes`: e.g. a book
re-run with ``--set lr=0.005``), the analysis chapter says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import LungclError
from .config import CONFIG_VERSION, RunConfig

# a tune record written before it named them: configuration version 3, the lowest validation loss kept
LEGACY_TUNE = (3, "loss")

TUNED_DIR = Path(__file__).resolve().parent.parent / "reference" / "tuned"


def tuned_path(profile: str, method: str, fisher: str = "exact") -> Path:
    suffix = "" if fisher == "exact" else f"_fisher_{fisher}"
    return TUNED_DIR / f"{profile}_{method}{suffix}.json"


def reference_tune(profile: str, method: str, fisher: str = "exact") -> dict:
    """The shipped tune record that chose ``method``'s default lambda on ``profile`` (with ``fisher``)."""
    path = tuned_path(profile, method, fisher)
    if not path.is_file():
        extra = "" if fisher == "exact" else f" --set fisher={fisher}"
        raise LungclError(f"no shipped tune record for {method} on the {profile} profile ({path.name}); "
                          f"run `lungcl tune --method {method} --profile {profile}{extra}`")
    return json.loads(path.read_text())


def reference_tunes(profile: str) -> list[dict]:
    """Every shipped tune record of ``profile`` with the exact Fisher, in the order l2, ewc, online_ewc."""
    return [reference_tune(profile, m) for m in ("l2", "ewc", "online_ewc") if tuned_path(profile, m).is_file()]


def variant_tunes(profile: str, variants: list[str] | tuple[str, ...]) -> dict[str, dict]:
    """Fisher variant -> the shipped EWC tune record with that Fisher on ``profile`` (those that ship)."""
    return {v: reference_tune(profile, "ewc", v) for v in variants if tuned_path(profile, "ewc", v).is_file()}


def tuned_under(record: dict) -> tuple[int, str]:
    """(configuration version, checkpoint rule) the tune's runs were made under; records written before
    version 4 name neither (they are version 3, ``select=loss``)."""
    if "config_version" not in record:
        return LEGACY_TUNE
    return int(record["config_version"]), str(record.get("select", record["base_config"].get("select", "loss")))


# the settings a tune's curve depends on besides lambda, the method and the seed (each compared with the book's runs)
TUNE_SETTINGS = ("source", "fold", "split_seed", "depth", "width", "small_input", "spatial_dims", "context_slices",
                 "epochs", "max_steps_per_epoch", "batch_size", "lr", "momentum", "weight_decay", "eval_every",
                 "patience", "fisher_samples", "gamma", "penalty_step", "bn", "freeze_bn_stats", "norm", "streams",
                 "augment", "balance")


def tuned_settings_differ(record: dict, config: RunConfig) -> dict[str, tuple]:
    """Setting -> (the tune's runs' value, ``config``'s) for each of :data:`TUNE_SETTINGS` that differs."""
    base = RunConfig.from_dict(record["base_config"])
    return {k: (getattr(base, k), getattr(config, k)) for k in TUNE_SETTINGS if getattr(base, k) != getattr(config, k)}


def stale_tunes(records: list[dict], config: RunConfig) -> list[dict]:
    """The tune records made under another configuration version, checkpoint rule or training setting than
    ``config``'s: their picks are today's defaults but were not derived from the runs ``config`` makes."""
    return [r for r in records
            if tuned_under(r) != (CONFIG_VERSION, config.select) or tuned_settings_differ(r, config)]


__all__ = ["LEGACY_TUNE", "TUNE_SETTINGS", "TUNED_DIR", "stale_tunes", "tuned_settings_differ", "tuned_under", "reference_tune", "reference_tunes", "tuned_path", "variant_tunes"]
