"""``GET /calls``: the query it takes and the CSV it can answer (no I/O here).

Query parameters, all optional: ``limit`` (1 to 1000, default 100); ``since`` and
``until`` (Unix seconds, or ISO 8601; a time without a zone is UTC), on the call's
start; ``number`` (the caller or the callee); ``member`` (an extension that answered or
appears in the hunt trace); ``format`` ``json`` (the default) or ``csv``, else the
``Accept`` header (``text/csv``) decides.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

MAX_RECORDS: Final = 1000
DEFAULT_LIMIT: Final = 100
#: A number or member as the store keeps them: digits, a leading +, a name.
_NUMBER: Final = re.compile(r"[A-Za-z0-9+*#._-]{1,64}")

#: The CSV columns, in order: the record's fields, then the hunt trace.
CSV_COLUMNS: Final = (
    "call_id",
    "caller",
    "caller_name",
    "callee",
    "answered_by",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "disposition",
    "caller_status",
    "callee_status",
    "end_reason",
    "hunt_trace",
    "hunts",
)
_TIMES: Final = ("started_at", "answered_at", "ended_at")


class QueryError(ValueError):
    """A query parameter the API cannot take; the message says which (400)."""


@dataclass(frozen=True, slots=True)
class CallQuery:
    limit: int = DEFAULT_LIMIT
    since: float | None = None
    until: float | None = None
    number: str | None = None
    member: str | None = None
    csv: bool = False


def parse_query(params: Mapping[str, str], accept: str = "") -> CallQuery:
    """The :class:`CallQuery` of ``/calls``'s parameters; :class:`QueryError` names the
    first one that is wrong."""
    text = params.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_RECORDS:
        raise QueryError(f"limit must be 1 to {MAX_RECORDS}")
    since = _instant(params, "since")
    until = _instant(params, "until")
    if since is not None and until is not None and until < since:
        raise QueryError("until is before since")
    fmt = params.get("format")
    if fmt is None:
        is_csv = "text/csv" in accept.lower()
    elif fmt in ("json", "csv"):
        is_csv = fmt == "csv"
    else:
        raise QueryError("format must be json or csv")
    return CallQuery(
        limit=int(text),
        since=since,
        until=until,
        number=_number(params, "number"),
        member=_number(params, "member"),
        csv=is_csv,
    )


def _instant(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name} must be Unix seconds or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(params: Mapping[str, str], name: str) -> str | None:
    text = params.get(name)
    if text is None:
        return None
    if _NUMBER.fullmatch(text) is None:
        raise QueryError(f"{name} must be a number or extension (letters, digits, + * # . _ -)")
    return text


def hunt_trace(hunts: Iterable[Mapping[str, object]]) -> str:
    """The hunt trace in one line, e.g. ``sales (linear): 101 rung +0.0s, 101 cancelled
    +15.0s (ring time over), 102 answered +18.2s -> connected 102``; hunts separated by
    `` | ``."""
    parts: list[str] = []
    for hunt in hunts:
        steps: list[str] = []
        members = hunt.get("members")
        for entry in members if isinstance(members, list) else []:
            if not isinstance(entry, Mapping):
                continue
            step = f"{entry.get('member')} {entry.get('outcome')}"
            at = entry.get("t")
            if isinstance(at, int | float):
                step += f" +{at:.1f}s"
            why = entry.get("reason") or entry.get("status")
            if why is not None:
                step += f" ({why})"
            steps.append(step)
        result = f"{hunt.get('result')}"
        if hunt.get("connected"):
            result += f" {hunt.get('connected')}"
        if hunt.get("overflow"):
            result += f" ({hunt.get('overflow')})"
        parts.append(
            f"{hunt.get('group')} ({hunt.get('strategy')}): {', '.join(steps)} -> {result}"
        )
    return " | ".join(parts)


def to_csv(records: Iterable[Mapping[str, object]]) -> str:
    """Records (as /calls answers them in JSON) as CSV with a header row: times in ISO
    8601 UTC, the hunt trace as one readable line and, last, as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row: list[object] = []
        hunts = record.get("hunts") or ()
        hunt_list = list(hunts) if isinstance(hunts, list | tuple) else []
        for column in CSV_COLUMNS:
            if column == "hunt_trace":
                row.append(hunt_trace(hunt_list))
            elif column == "hunts":
                row.append(json.dumps(hunt_list, separators=(",", ":")) if hunt_list else "")
            elif column in _TIMES:
                row.append(_iso(record.get(column)))
            else:
                value = record.get(column)
                row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()


def _iso(value: object) -> str:
    if not isinstance(value, int | float):
        return ""
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="milliseconds")
