"""The estimator classes a saved file may name, and what each one saves.

A leaf module: it imports nothing from skhbnn.  Every estimator class that
:func:`skhbnn.save` can write registers itself here with
:func:`register_estimator`, naming its fitted attributes; the persistence code
reads this table and never imports the estimator modules, so there is no
import cycle between them.  Importing :mod:`skhbnn` registers every class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Registered:
    """One saveable estimator class.

    ``fitted`` are the attributes that ``fit`` sets and prediction needs,
    saved by name (those absent on an instance, such as
    ``feature_names_in_`` for arrays without column names, are skipped).
    """

    cls: type
    fitted: tuple[str, ...]


_REGISTRY: dict[str, Registered] = {}


def register_estimator(*, fitted: tuple[str, ...]):
    """Class decorator: make a class saveable under its own name."""

    def decorate(cls):
        name = cls.__name__
        known = _REGISTRY.get(name)
        if known is not None and known.cls.__qualname__ != cls.__qualname__:
            raise TypeError(f"two estimator classes are registered as {name!r}.")
        _REGISTRY[name] = Registered(cls, tuple(fitted))
        return cls

    return decorate


def registered() -> dict[str, Registered]:
    """``{class name: Registered}`` of every registered estimator class."""
    return dict(_REGISTRY)
