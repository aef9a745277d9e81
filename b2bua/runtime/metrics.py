"""Prometheus metrics (``GET /metrics``), one :class:`Metrics` per server with its own
``CollectorRegistry`` (no process-wide state: two servers in one process, as the
integration tests run them, count apart).

Where each number comes from (docs/metrics.md lists every metric):

* SIP messages in and out: the driver hands every datagram or stream message it feeds
  in and every one it sends to :meth:`Metrics.sip_received` / :meth:`Metrics.sip_sent`,
  which read the first line (and the CSeq method of a response) with two small regexes;
  no full parse. Labels are bounded: unknown methods count as ``other``.
* Calls, hunts and answers: each call record the switch saves
  (:meth:`Metrics.call_recorded`), so a call counts once, when it ends.
* RTP: the media host's totals (closed sessions plus live ones) at scrape time.
* Everything that is a level (active calls, registrations, media ports, voicemail
  messages, trunk registrations): read from the switch's ``/status`` snapshot at scrape
  time by a custom collector, so nothing can drift from what /status says.
* Parse errors and failed authentications: counters the pure core keeps
  (``Switch.counters``, ``AuthGuard.failures_total``), read at scrape time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from b2bua.call.records import CallRecord, Disposition
from b2bua.sip.status import KNOWN_METHODS

#: The content type of the text exposition format, version 0.0.4.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# RFC 3261 section 7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF
_REQUEST_LINE: Final = re.compile(rb"([A-Za-z!%*_+`'~.-]+) [^ \r\n]+ SIP/2\.0\r?\n")
# Section 7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
_STATUS_LINE: Final = re.compile(rb"SIP/2\.0 ([1-6][0-9][0-9]) ")
# Section 20.16: CSeq = "CSeq" HCOLON 1*DIGIT LWS Method (no compact form). Header names
# are case-insensitive; "CSeq" as written is looked for first (the fast path).
_CSEQ: Final = re.compile(rb"\ncseq[ \t]*:[ \t]*[0-9]+[ \t]+([A-Za-z]+)", re.IGNORECASE)
_CSEQ_VALUE: Final = re.compile(rb"[ \t]*:[ \t]*[0-9]+[ \t]+([A-Za-z]+)")
_KNOWN: Final = frozenset(method.encode() for method in KNOWN_METHODS)
OTHER: Final = "other"


def classify(data: bytes) -> tuple[str, str | None] | None:
    """(method, status) of a SIP message from its first line: ``("INVITE", None)`` for a
    request, ``("INVITE", "180")`` for a response to one; ``None`` for what is not a SIP
    message (a CRLF keep-alive, garbage). A method we do not know counts as ``other``."""
    status = _STATUS_LINE.match(data)
    if status is not None:
        at = data.find(b"\nCSeq")
        cseq = _CSEQ_VALUE.match(data, at + 5) if at >= 0 else None
        if cseq is None:
            cseq = _CSEQ.search(data)
        method = cseq.group(1).upper() if cseq is not None else b""
        return _method_label(method), status.group(1).decode()
    request = _REQUEST_LINE.match(data)
    if request is not None:
        return _method_label(request.group(1)), None
    return None


def _method_label(method: bytes) -> str:
    return method.decode() if method in _KNOWN else OTHER


#: What the metrics read at scrape time: the switch's /status snapshot.
Snapshot = Callable[[], Mapping[str, Any]]
#: Plain counters read at scrape time (name without ``b2bua_`` and ``_total`` -> value).
Counts = Callable[[], Mapping[str, int]]


class Metrics:
    """Counters fed by the shell, plus a collector that reads levels at scrape time."""

    def __init__(self, snapshot: Snapshot, counts: Counts) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # Per message, on the event loop: plain dict counts (about 2 us a message with the
        # classification, against 10 us through Counter.labels()), exported at scrape time.
        self._requests: dict[tuple[str, str], int] = {}
        self._responses: dict[tuple[str, str, str], int] = {}
        self._calls = Counter(
            "b2bua_calls",
            "Calls that ended, by disposition.",
            ["disposition"],
            registry=registry,
        )
        self._hunts = Counter(
            "b2bua_hunts",
            "Hunts that ended (one call may hunt several groups), by group and result.",
            ["group", "result"],
            registry=registry,
        )
        self._answers = Counter(
            "b2bua_member_answers",
            "Calls answered, by the extension that answered and the group it was hunted in "
            '(group "" for a direct call).',
            ["member", "group"],
            registry=registry,
        )
        for disposition in Disposition:  # every disposition shows, at 0 too
            self._calls.labels(disposition=disposition.value)
        registry.register(_Levels(snapshot, counts, self._requests, self._responses))

    def sip_received(self, data: bytes) -> None:
        self._count("in", data)

    def sip_sent(self, data: bytes) -> None:
        self._count("out", data)

    def _count(self, direction: str, data: bytes) -> None:
        kind = classify(data)
        if kind is None:
            return
        method, status = kind
        if status is None:
            key = (direction, method)
            self._requests[key] = self._requests.get(key, 0) + 1
        else:
            answer = (direction, method, status)
            self._responses[answer] = self._responses.get(answer, 0) + 1

    def call_recorded(self, record: CallRecord) -> None:
        self._calls.labels(disposition=str(record.disposition)).inc()
        answered_in: str | None = None
        for hunt in record.hunts:
            group = str(hunt.get("group", ""))
            self._hunts.labels(group=group, result=str(hunt.get("result", ""))).inc()
            if hunt.get("connected") is not None and hunt.get("connected") == record.answered_by:
                answered_in = group
        member = record.answered_by
        if member is not None and not member.startswith("voicemail:"):
            self._answers.labels(member=member, group=answered_in or "").inc()

    def exposition(self) -> bytes:
        """The registry in the text format."""
        return generate_latest(self.registry)


class _Levels(Collector):
    """Gauges read from the snapshot, and the core's own counters, at every scrape."""

    def __init__(
        self,
        snapshot: Snapshot,
        counts: Counts,
        requests: Mapping[tuple[str, str], int],
        responses: Mapping[tuple[str, str, str], int],
    ) -> None:
        self._snapshot = snapshot
        self._counts = counts
        self._requests = requests
        self._responses = responses

    def describe(self) -> Iterable[Metric]:
        return []  # described by collect(), at scrape time

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "b2bua_sip_requests",
            "SIP requests received (in) and sent (out), retransmissions included.",
            labels=["direction", "method"],
        )
        for labels, count in sorted(self._requests.items()):
            requests.add_metric(labels, count)
        yield requests
        responses = CounterMetricFamily(
            "b2bua_sip_responses",
            "SIP responses received (in) and sent (out), by the CSeq method and status code.",
            labels=["direction", "method", "status"],
        )
        for answer, count in sorted(self._responses.items()):
            responses.add_metric(answer, count)
        yield responses
        counts = self._counts()
        for name, (help_text, key) in _COUNTERS.items():
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], counts.get(key, 0))
            yield family
        yield from levels(self._snapshot())


_COUNTERS: Final = {
    "b2bua_sip_parse_errors": ("SIP messages that could not be parsed.", "parse_errors"),
    "b2bua_auth_failures": (
        "Digest authentications that failed (wrong password, unknown user, stale replay).",
        "auth_failures",
    ),
    "b2bua_rtp_packets_relayed": (
        "RTP packets the media relay forwarded, both directions.",
        "rtp_relayed",
    ),
    "b2bua_rtp_packets_dropped": (
        "Packets received on relay sockets and not forwarded (unknown source, not RTP, "
        "no destination yet).",
        "rtp_dropped",
    ),
    "b2bua_invites_refused_draining": (
        "New INVITEs answered 503 because the switch was draining.",
        "refused_draining",
    ),
    "b2bua_config_reloads": ("Configuration reloads applied.", "reloads"),
    "b2bua_config_reload_failures": (
        "Configuration reloads refused (the file had errors; the running config stayed).",
        "reload_failures",
    ),
}


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text)
    family.add_metric([], value)
    return family


def levels(state: Mapping[str, Any]) -> Iterator[Metric]:
    """The gauges of one /status snapshot (pure: unit-tested on a dict)."""
    calls = state.get("calls", {})
    yield _gauge("b2bua_calls_active", "Calls in progress (ringing or answered).", calls["active"])
    hunting = GaugeMetricFamily(
        "b2bua_calls_hunting", "Calls hunting in a group right now.", labels=["group"]
    )
    members = GaugeMetricFamily(
        "b2bua_group_members",
        "Members of each group by state (idle, ringing, talking, dnd, unregistered, unreachable).",
        labels=["group", "state"],
    )
    for name, group in sorted(state.get("groups", {}).items()):
        hunting.add_metric([name], group["hunting"])
        by_state: dict[str, int] = dict.fromkeys(_MEMBER_STATES, 0)
        for member in group["members"]:
            by_state[member["state"]] = by_state.get(member["state"], 0) + 1
        for member_state, count in by_state.items():
            members.add_metric([name, member_state], count)
    yield hunting
    yield members
    registrations = state.get("registrations", {})
    yield _gauge(
        "b2bua_registrations",
        "Contacts registered (bindings), all extensions.",
        sum(len(bindings) for bindings in registrations.values()),
    )
    yield _gauge(
        "b2bua_registered_extensions",
        "Extensions with at least one registered contact.",
        sum(1 for bindings in registrations.values() if bindings),
    )
    yield _gauge(
        "b2bua_blocked_sources",
        "Source addresses blocked after failed authentications.",
        len(state.get("blocked_sources", [])),
    )
    yield _gauge("b2bua_transactions", "SIP transactions alive.", state.get("transactions", 0))
    ports = state.get("media_ports", {})
    yield _gauge(
        "b2bua_media_ports_in_use",
        "RTP port pairs the switch holds for calls (an even RTP port from [media] and "
        "the RTCP port above it; two per relayed call).",
        ports.get("allocated", 0),
    )
    yield _gauge(
        "b2bua_media_ports_capacity",
        "RTP ports in the configured range.",
        ports.get("capacity", 0),
    )
    media = state.get("media", {})
    yield _gauge(
        "b2bua_media_sessions", "Media sessions (relays, voicemail) open.", media.get("sessions", 0)
    )
    yield _gauge(
        "b2bua_media_sockets",
        "UDP sockets the media host has bound (RTP and RTCP, both sides).",
        media.get("sockets", 0),
    )
    messages = GaugeMetricFamily(
        "b2bua_voicemail_messages",
        "Voicemail messages kept, by mailbox and state (new: unread).",
        labels=["mailbox", "state"],
    )
    for mailbox, counts in sorted(state.get("voicemail", {}).get("messages", {}).items()):
        messages.add_metric([mailbox, "new"], counts["new"])
        messages.add_metric([mailbox, "old"], counts["old"])
    yield messages
    trunks = GaugeMetricFamily(
        "b2bua_trunk_registered",
        "1 when the provider holds the trunk's registration, else 0 (trunks that register).",
        labels=["trunk"],
    )
    trunk_calls = GaugeMetricFamily(
        "b2bua_trunk_calls", "Calls in progress from each trunk.", labels=["trunk"]
    )
    failures = GaugeMetricFamily(
        "b2bua_trunk_registration_failures",
        "Registration attempts of each trunk that failed in a row (0 once registered).",
        labels=["trunk"],
    )
    last_status = GaugeMetricFamily(
        "b2bua_trunk_registration_last_status",
        "The status code of the provider's last answer to the trunk's REGISTER (408: none).",
        labels=["trunk"],
    )
    next_attempt = GaugeMetricFamily(
        "b2bua_trunk_registration_next_attempt_timestamp_seconds",
        "When the trunk sends its next REGISTER: refresh or retry (Unix time).",
        labels=["trunk"],
    )
    for name, trunk in sorted(state.get("trunks", {}).items()):
        trunk_calls.add_metric([name], trunk.get("calls", 0))
        registration = trunk.get("registration")
        if registration is not None:
            trunks.add_metric([name], 1 if registration.get("state") == "registered" else 0)
            failures.add_metric([name], registration.get("consecutive_failures") or 0)
            if registration.get("last_status") is not None:
                last_status.add_metric([name], registration["last_status"])
            if registration.get("next_attempt") is not None:
                next_attempt.add_metric([name], registration["next_attempt"])
    yield trunks
    yield failures
    yield last_status
    yield next_attempt
    yield trunk_calls
    yield _gauge(
        "b2bua_draining",
        "1 while the switch drains (SIGTERM): new calls are refused.",
        1 if state.get("draining") else 0,
    )


_MEMBER_STATES: Final = ("idle", "ringing", "talking", "dnd", "unregistered", "unreachable")
