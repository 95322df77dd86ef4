"""Imported by the local executor's fork server only, before it forks any trial.

It loads what trials run (the trial module and every family's library, which the family
registry would otherwise import in each trial, after the fork, in memory of its own),
then moves every object made so far into the garbage collector's permanent generation
(`gc.freeze`): a trial's collections then never walk those objects, so their pages stay
shared with the fork server instead of being copied into each trial (an idle trial's
private memory: 40 MB without, 4 MB with).
"""

from __future__ import annotations

import gc
import logging

import tabpilot.execution.trial  # noqa: F401  (imported for its side effect: loaded once)
from tabpilot.models import FAMILIES

log = logging.getLogger("tabpilot.execution.preload")

for _name in FAMILIES:
    try:
        FAMILIES[_name]
    except ImportError:  # an optional library missing: the trial that needs it reports it
        log.debug("family %s not preloaded", _name, exc_info=True)

gc.collect()
gc.freeze()
