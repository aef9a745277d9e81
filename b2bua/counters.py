"""Counters the pure core keeps for the metrics (``/metrics`` reads them at scrape time):
only what the shell cannot see from the messages going in and out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SwitchCounters:
    """``parse_errors``: messages that could not be parsed (answered 400 when they were
    requests with enough to answer, else dropped); ``refused_draining``: new INVITEs
    answered 503 while the switch drained."""

    parse_errors: int = 0
    refused_draining: int = 0
