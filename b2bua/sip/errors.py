"""Errors of the SIP layer, named by the side at fault.

A :class:`RemoteProtocolError` is the peer's fault and carries the reply to send
(``status_hint``), or ``None`` when no reply can be built and the message is dropped.
A :class:`LocalProtocolError` is a bug in our own code.
"""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error raised by :mod:`b2bua.sip`."""


class RemoteProtocolError(SipError):
    """The peer sent something we cannot accept.

    ``status_hint`` is the status code to answer with (400, 505, 513, ...), or ``None``
    when no response can be built (a broken response, a request without a usable Via).
    ``reason`` is a reason phrase that names the fault, for the response line.
    """

    def __init__(self, reason: str, *, status_hint: int | None = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint


class ParseError(RemoteProtocolError):
    """Bytes that are not a well-formed SIP message (RFC 3261 section 25)."""


class LocalProtocolError(SipError):
    """We tried to build or send something the RFCs forbid: a bug on our side."""
