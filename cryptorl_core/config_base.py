"""What every configuration dataclass shares: named profiles, copies, (de)serialisation, fingerprints.

A stage's configuration is a ``@dataclass`` deriving from :class:`ConfigBase`::

    @dataclass(frozen=True)
    class HMMConfig(ConfigBase):
        n_restarts: int = 4
        ...

        @classmethod
        def full(cls) -> HMMConfig:   # quick() is the defaults, cls()
            return cls(n_restarts=10)  # seed000, seed001, simple: full() unless overridden

and gets ``profile(name)``, ``replace(**changes)``, ``as_dict()``, ``from_dict(d)`` and
``fingerprint()``. Nested configuration dataclasses (``AgentConfig.env``, the ``collapse`` rule)
and tuple fields round-trip through ``as_dict`` / ``from_dict`` from the field annotations.

:data:`PROFILE_NAMES` is the one list of profile names; this module imports nothing else of the
project but :mod:`~cryptorl_core.fingerprint`, so every configuration module can import it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, TypeVar

from cryptorl_core.fingerprint import stable_hash

__all__ = ["PROFILE_NAMES", "ConfigBase", "same_as"]

#: Every profile name, the pipeline's order: ``quick`` (CPU minutes), ``full`` (full size: seed
#: 001 with the project's measured departures), ``seed000`` / ``seed001`` (the seeds exactly),
#: ``simple`` (seed 004's plan B "V7 ultra-simple"). A class declares the subset it answers to.
PROFILE_NAMES: tuple[str, ...] = ("quick", "full", "seed000", "seed001", "simple")

_C = TypeVar("_C", bound="ConfigBase")


def same_as(target: str) -> Any:
    """A profile classmethod returning the class's ``target`` profile, for a profile that shares
    another's values (``simple = same_as("full")`` in a class body)."""

    def alias(cls: type[ConfigBase]) -> ConfigBase:
        return typing.cast(ConfigBase, getattr(cls, target)())

    alias.__doc__ = f"The ``{target}`` profile."
    return classmethod(alias)


class ConfigBase:
    """Mixin of the configuration dataclasses (it has no fields of its own).

    Profiles are classmethods named after them. By default ``quick`` and ``full`` are the field
    defaults, and ``seed000``, ``seed001`` and ``simple`` are :meth:`full`: a class overrides
    those that differ.

    :cvar PROFILES: the names :meth:`profile` accepts, each a classmethod of the class returning
        an instance; a subset of :data:`PROFILE_NAMES` (all of it by default), checked when the
        class is defined.
    """

    PROFILES: ClassVar[tuple[str, ...]] = PROFILE_NAMES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [name for name in cls.PROFILES if name not in PROFILE_NAMES]
        missing = [name for name in cls.PROFILES if not callable(getattr(cls, name, None))]
        if unknown or missing:
            raise TypeError(f"{cls.__name__}.PROFILES: {unknown} not in PROFILE_NAMES {PROFILE_NAMES}, "
                            f"{missing} not classmethods of the class")

    # ------------------------------------------------------------------ profiles

    @classmethod
    def quick(cls: type[_C]) -> _C:
        """CPU minutes; the defaults unless the class overrides it."""
        return cls()

    @classmethod
    def full(cls: type[_C]) -> _C:
        """Full size; the defaults unless the class overrides it."""
        return cls()

    seed000 = seed001 = simple = same_as("full")

    @classmethod
    def profile(cls: type[_C], name: str) -> _C:
        """The profile ``name``: the classmethod of that name, one of the class's ``PROFILES``."""
        if name not in cls.PROFILES:
            raise ValueError(f"unknown {cls.__name__} profile {name!r}; choose one of {cls.PROFILES}")
        return getattr(cls, name)()

    # ------------------------------------------------------------------ copies, (de)serialisation

    def replace(self: _C, **changes: Any) -> _C:
        """A copy with some fields changed (``dataclasses.replace``: validated again)."""
        return dataclasses.replace(typing.cast(Any, self), **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field: nested configurations become dicts, tuples lists."""
        return typing.cast(dict[str, Any], _to_plain(self))

    @classmethod
    def from_dict(cls: type[_C], d: Mapping[str, Any]) -> _C:
        """Inverse of :meth:`as_dict`: nested configurations and tuples are rebuilt from the
        field annotations; unknown keys (from newer versions) are ignored, missing ones default."""
        return typing.cast(_C, _build(cls, d))

    def fingerprint(self) -> str:
        """Short stable hash of every field (:func:`~cryptorl_core.fingerprint.stable_hash` of
        :meth:`as_dict`): a checkpoint only resumes a run with the same one."""
        return stable_hash(self.as_dict())


# ---------------------------------------------------------------------- helpers


def _to_plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples and lists to lists, recursively; anything else as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


@cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each init field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _build(cls: type[Any], d: Mapping[str, Any]) -> Any:
    """An instance of the dataclass ``cls`` from a plain mapping (see :func:`_from_plain`)."""
    types_ = _field_types(cls)
    return cls(**{k: _from_plain(types_[k], v) for k, v in d.items() if k in types_})


def _from_plain(hint: Any, value: Any) -> Any:
    """``value`` read back as the annotation ``hint``: a mapping becomes the annotated dataclass
    (its ``from_dict`` when it has one), a list the annotated tuple; unions try each member."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for member in args:
            converted = _from_plain(member, value)
            if converted is not value:
                return converted
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        from_dict = getattr(hint, "from_dict", None)
        return from_dict(value) if from_dict is not None else _build(hint, value)
    if (origin is tuple or hint is tuple) and isinstance(value, list | tuple):
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(args[0], v) for v in value)
        return tuple(_from_plain(a, v) for a, v in zip(args, value, strict=True))
    return value
