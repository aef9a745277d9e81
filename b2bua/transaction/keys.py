"""Transaction identity: which transaction a message belongs to (RFC 3261 sections 17.1.3
and 17.2.3, and 9.2 for CANCEL).

A :class:`TransactionKey` is a small immutable, hashable value: a NamedTuple, because one is
built and hashed for every message and a tuple is much cheaper than a frozen dataclass at
both. The layer hands it out with every event, and takes it back in ``send_response``,
``on_timer`` and ``on_transport_error``; the owner files timers under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.headers import MAGIC_COOKIE
from b2bua.sip.message import Request, Response


class Side(StrEnum):
    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class LegacyId:
    """The RFC 2543 identity of a request without an RFC 3261 branch (section 17.2.3):
    Request-URI, To tag, From tag, Call-ID, CSeq number and top Via."""

    request_uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq_number: int
    top_via: str

    @property
    def ack_id(self) -> tuple[str, str | None, str, int, str]:
        """What an ACK shares with its INVITE: all but the To tag, which in the ACK is the
        one of the response."""
        return self.request_uri, self.from_tag, self.call_id, self.cseq_number, self.top_via


class TransactionKey(NamedTuple):
    """The identity of one transaction.

    - ``side``: client (we sent the request) or server (we received it).
    - ``method``: the request's method; an ACK is filed under INVITE.
    - ``branch``: the top Via branch. A client transaction is (branch, method), RFC 3261
      section 17.1.3; so is a server transaction with an RFC 3261 branch, plus
      ``sent_by``.
    - ``sent_by``: server side, RFC 3261 branch: the top Via's host (lower case) and port
      (defaulted by transport). None otherwise.
    - ``legacy``: server side, request without the magic cookie: the RFC 2543 identity
      (``branch`` is then "" and ``sent_by`` None).
    """

    side: Side
    method: str
    branch: str
    sent_by: tuple[str, int] | None = None
    legacy: LegacyId | None = None

    def __str__(self) -> str:
        if self.legacy is not None:
            return f"{self.side.value}:{self.method}:2543:{self.legacy.call_id}"
        return f"{self.side.value}:{self.method}:{self.branch}"

    def with_method(self, method: str) -> TransactionKey:
        """The same key for another method (CANCEL -> the INVITE it cancels)."""
        return self._replace(method=method)


def is_rfc3261_branch(branch: str | None) -> bool:
    """RFC 3261 section 8.1.1.7: a branch made by an RFC 3261 element starts with the
    magic cookie."""
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def client_key(request: Request) -> TransactionKey:
    """The key of the client transaction that sends ``request``. Raises LocalProtocolError
    when its top Via has no RFC 3261 branch (the TU must make one, section 8.1.1.7)."""
    branch = request.top_via.branch
    if branch is None or not is_rfc3261_branch(branch):
        raise LocalProtocolError("a request we send needs an RFC 3261 branch in its top Via")
    return TransactionKey(Side.CLIENT, request.method, branch)


def response_key(response: Response) -> TransactionKey | None:
    """The key of the client transaction ``response`` belongs to (RFC 3261 section
    17.1.3: top Via branch and CSeq method), or None when it has no branch."""
    branch = response.top_via.branch
    if not branch:
        return None
    return TransactionKey(Side.CLIENT, response.cseq.method, branch)


def server_key(request: Request) -> TransactionKey:
    """The key of the server transaction ``request`` belongs to (RFC 3261 section
    17.2.3). An ACK gets the INVITE's method; for an RFC 2543 ACK the To tag is that of
    the response, so the layer matches it by :attr:`LegacyId.ack_id` instead.

    Raises :class:`~b2bua.sip.errors.ParseError` when a header it needs is malformed.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if is_rfc3261_branch(branch):
        assert branch is not None
        host, port = via.sent_by
        return TransactionKey(Side.SERVER, method, branch, (host.lower(), port))
    legacy = LegacyId(
        request_uri=request.uri,
        to_tag=request.to.tag,
        from_tag=request.from_.tag,
        call_id=request.call_id,
        cseq_number=request.cseq.number,
        top_via=str(via),
    )
    return TransactionKey(Side.SERVER, method, "", legacy=legacy)
