"""What every run configuration shares: a frozen dataclass, hashed into a run id, overridden by ``--set``.

``RunConfig`` (continual learning) and ``MTLConfig`` (multi-task) are both frozen
dataclasses with a ``tasks`` tuple. This module holds the parts that do not depend
on which one: the dict round trip (:class:`ConfigDict`), the patch store a run reads
(:class:`StoreRef`), the canonical JSON and its hash, the profile-plus-overrides merge,
and ``--set key=value`` parsing by the field's type. The profiles' tables are in
:mod:`lungcl.profiles`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar

from ..errors import LungclError

C = TypeVar("C", bound="ConfigDict")


@dataclass(frozen=True)
class StoreRef:
    """The patch store a run reads: prepared once before a run or a grid, and the data its record is checked against."""

    data_dir: str
    source: str
    profile: str
    lidc_root: str | None = None


class ConfigDict:
    """Mixin for a frozen config dataclass: ``to_dict`` / ``from_dict`` (tuples as JSON lists) and ``replace``.

    A run configuration also names the fields that are paths (``paths``: not hashed; made absolute
    for workers elsewhere) and the patch store it reads (``store``; None: no store).
    """

    paths: ClassVar[tuple[str, ...]] = ()

    @property
    def store(self) -> StoreRef | None:
        return None

    def with_absolute_paths(self: C) -> C:
        """The paths made absolute, so a worker started elsewhere finds the same files."""
        return self.replace(**{n: str(Path(getattr(self, n)).resolve()) for n in self.paths if getattr(self, n)})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - names
        if unknown:
            raise LungclError(f"unknown configuration fields: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def check(ok: bool, message: str) -> None:
    """Raise ``LungclError(message)`` unless ``ok``."""
    if not ok:
        raise LungclError(message)


def canonical_json(config: ConfigDict, unhashed: Iterable[str] = (), neutral: Mapping[str, Any] | None = None,
                   extra: Mapping[str, Any] | None = None) -> str:
    """The hashed text of ``config``: sorted keys, no spaces, without the ``unhashed`` fields and
    without the ``neutral`` fields at their neutral value; ``extra`` keys (versions) added."""
    skip, neutral = set(unhashed), neutral or {}
    d = {k: v for k, v in config.to_dict().items() if k not in skip and not (k in neutral and v == neutral[k])}
    d.update(extra or {})
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def hash_id(text: str) -> str:
    """The first 16 hex digits of the sha256 of ``text``: a run id."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def merge_settings(cls: type, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; a ``None`` override is dropped unless the field's default is None.

    An unknown override name -> LungclError listing the known ones.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise LungclError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
    return {**base, **{k: v for k, v in overrides.items() if v is not None or fields[k].default is None}}


# ---------------------------------------------------------------- --set key=value

TRUE, FALSE, NONE = ("1", "true", "yes", "on"), ("0", "false", "no", "off"), ("none", "null", "")


def parse_value(cls: type, name: str, text: str, tuple_value: Callable[[str], Any] = str) -> Any:
    """``text`` read as the type of ``cls``'s field ``name`` (int, float, bool, str, or none if optional);
    a tuple field (the tasks) is ``tuple_value(text)``."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        raise LungclError(f"unknown setting {name!r}; known: {', '.join(sorted(hints))}")
    typ, text = hints[name], text.strip()
    args = typing.get_args(typ)
    optional = type(None) in args
    if optional and text.lower() in NONE:
        return None
    if optional:
        typ = next(a for a in args if a is not type(None))
    if typing.get_origin(typ) is tuple:
        return tuple_value(text)
    try:
        if typ is bool:
            if text.lower() in TRUE + FALSE:
                return text.lower() in TRUE
            raise ValueError(text)
        if typ in (int, float, str):
            return typ(text)
    except ValueError:
        pass
    shown = text if text.isprintable() else repr(text)  # a line break in the value stays on the one line
    raise LungclError(f"--set {name}={shown}: expected {getattr(typ, '__name__', typ)}"
                      f"{' or none' if optional else ''}")


def parse_overrides(cls: type, items: list[str] | None, tuple_value: Callable[[str], Any] = str) -> dict[str, Any]:
    """``["lr=0.05", "epochs=20"]`` -> typed values of ``cls``'s fields; bad key or value -> LungclError."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LungclError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = parse_value(cls, key.strip(), value, tuple_value)
    return out


__all__ = ["ConfigDict", "StoreRef", "check", "canonical_json", "hash_id", "merge_settings", "parse_value",
           "parse_overrides"]
