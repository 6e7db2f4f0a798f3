"""The one progress bar of the long verbs (sampling, features, IWAE, encoding, projection): tqdm on stderr, shown
on a terminal only unless asked (``enabled``: None = on a terminal, True = always, False = never), so that piped
output and tests stay clean; ``--quiet`` on any verb (:func:`set_quiet`) turns every bar off, training's too. Training
has its own bar (``train.progress``) in :mod:`gankit.train.log`."""

from __future__ import annotations

import sys
from typing import Iterable

from tqdm.auto import tqdm


_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress bar off (``--quiet``), or back on."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    """True after ``set_quiet(True)``."""
    return _quiet


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str, unit: str = "it",
             enabled: bool | None = None) -> tqdm:
    """A tqdm bar on stderr over ``iterable`` (or updated by hand up to ``total``); see the module docstring."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, mininterval=0.5, dynamic_ncols=True,
                leave=False, disable=True if _quiet else None if enabled is None else not enabled)
