"""Limits the command line shows in its help, kept here, away from polars and numpy.

``--help`` must import no heavy library (tests/test_public_api.py), yet a default must be
written once: the flag, the plan schema and :mod:`.split` all read it from here.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_GROUPS"]

#: The most distinct values an audience column may have before a run is refused.
DEFAULT_MAX_GROUPS = 100
