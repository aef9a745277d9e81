"""The wire side of a dialog: reading the route set and targets out of messages, and
writing requests inside a dialog (RFC 3261 section 12.2.1.1).

Pure functions over :mod:`b2bua.sip`; :class:`~b2bua.dialog.dialog.Dialog` holds the state
and calls them. Route set entries are Record-Route values as written (name-addr text, URI
parameters and header parameters kept), so each goes out as a Route value unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from b2bua.sip.address import Transport
from b2bua.sip.errors import LocalProtocolError, ParseError
from b2bua.sip.headers import MAGIC_COOKIE, NameAddr, parse_name_addr
from b2bua.sip.message import Headers, Message, Request, Response, make_response
from b2bua.sip.uri import SipUri, parse_uri

#: RFC 3261 section 8.1.1.6: a UAC SHOULD start Max-Forwards at 70.
MAX_FORWARDS: Final = 70

#: RFC 3261 section 8.1.1.5: a CSeq number MUST be less than 2**31.
CSEQ_LIMIT: Final = 2**31

#: RFC 3261 section 19.1.1, table 1: parameters a SIP URI may carry but a Request-URI may
#: not ("method" is only meaningful in a URI turned into a request); URI headers neither.
_NOT_IN_REQUEST_URI: Final = frozenset({"method"})


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """Where a request we send says it comes from: the sent-by of its Via (RFC 3261
    section 18.1.1), i.e. the switch's advertised host and port, and the transport."""

    host: str
    port: int
    transport: Transport = Transport.UDP

    def via(self, branch: str) -> str:
        """Our Via value. ``rport`` asks the next hop to answer to the source port
        (RFC 3581), as every request the switch sends does."""
        if not branch.startswith(MAGIC_COOKIE):
            # RFC 3261 section 8.1.1.7: the branch MUST start with the magic cookie.
            raise LocalProtocolError(f"branch {branch!r} lacks the magic cookie")
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"SIP/2.0/{self.transport.value} {host}:{self.port};branch={branch};rport"


def without_tag(name_addr: NameAddr) -> str:
    """A From/To value with its tag removed: the local or remote URI of a dialog, with
    the display name and any other parameter kept (RFC 3261 sections 12.1.1, 12.1.2)."""
    params = tuple((n, v) for n, v in name_addr.params if n.lower() != "tag")
    return str(name_addr._replace(params=params))


def with_tag(name_addr: str, tag: str | None) -> str:
    """A dialog URI as a From/To value, tagged when the tag is known."""
    return name_addr if tag is None else f"{name_addr};tag={tag}"


def first_contact_uri(message: Message) -> str | None:
    """The URI of the first Contact value, or None when there is none.

    A target is one URI; a dialog-creating message carries exactly one Contact (RFC 3261
    sections 8.1.1.8, 12.1.1), so when a peer sends several the first one wins.
    ``Contact: *`` is a REGISTER form only and is refused.
    """
    contacts = message.contacts
    if not contacts:
        return None
    contact = contacts[0]
    if contact.is_wildcard:
        raise ParseError("wildcard Contact in a dialog", status_hint=400)
    return contact.uri_text


def record_route(message: Message) -> list[str]:
    """The Record-Route values of ``message`` in the order they appear (all fields, each
    list split at its commas). Each is checked to be a name-addr with a URI; a value
    written without angle brackets is rewritten with them (RFC 3261 section 20.30 allows
    only ``name-addr`` there)."""
    routes: list[str] = []
    for value in message.headers.get_all("record-route"):
        parsed = parse_name_addr(value, "Record-Route header")
        if parsed.is_wildcard:
            raise ParseError("malformed Record-Route header", status_hint=400)
        routes.append(value if "<" in value else str(parsed))
    return routes


def route_uri(route: str) -> str:
    """The URI of one route set entry."""
    return parse_name_addr(route, "Route header").uri_text


def is_loose(route: str) -> bool:
    """Whether the element named by ``route`` is a loose router (its URI has ``lr``,
    RFC 3261 section 19.1.1). Anything else is taken for an RFC 2543 strict router."""
    uri_text = route_uri(route)
    try:
        uri = parse_uri(uri_text)
    except ParseError:
        # A URI our grammar refuses (a stray character in some parameter) still says
        # whether it has lr; refusing it would break the call for a cosmetic fault.
        params = uri_text.partition("?")[0].split(";")[1:]
        return any(p.partition("=")[0].strip().lower() == "lr" for p in params)
    return isinstance(uri, SipUri) and uri.has_param("lr")


def _as_request_uri(uri_text: str) -> str:
    try:
        uri = parse_uri(uri_text)
    except ParseError:
        return uri_text
    if not isinstance(uri, SipUri):
        return uri_text
    params = tuple((n, v) for n, v in uri.params if n.lower() not in _NOT_IN_REQUEST_URI)
    return str(SipUri(uri.host, uri.scheme, uri.user, uri.password, uri.port, params))


def request_target(remote_target: str, route_set: list[str]) -> tuple[str, list[str]]:
    """The Request-URI and the Route values of a request in a dialog (RFC 3261 section
    12.2.1.1).

    - Empty route set: the remote target, no Route.
    - First route loose (``lr``): the remote target; Route = the route set, in order.
    - First route strict: its URI (without the parameters a Request-URI may not carry);
      Route = the rest of the route set, then the remote target as the last value.
    """
    if not route_set:
        return remote_target, []
    first = route_set[0]
    if is_loose(first):
        return remote_target, list(route_set)
    return _as_request_uri(route_uri(first)), [*route_set[1:], f"<{remote_target}>"]


def build_request(
    method: str,
    *,
    remote_target: str,
    route_set: list[str],
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """A request with the header fields RFC 3261 section 8.1.1 requires, in the usual
    order: Via, Route..., Max-Forwards, From, To, Call-ID, CSeq, Contact, the extra
    fields, Content-Type. Content-Length is written when the request is serialised."""
    if not 0 <= cseq < CSEQ_LIMIT:
        raise LocalProtocolError(f"CSeq {cseq} out of range")
    if body and content_type is None:
        # RFC 3261 section 7.4.1: a non-empty body MUST have a Content-Type.
        raise LocalProtocolError("a body needs a Content-Type")
    request_uri, routes = request_target(remote_target, route_set)
    headers = Headers()
    headers.add("Via", via)
    for route in routes:
        headers.add("Route", route)
    headers.add("Max-Forwards", str(MAX_FORWARDS))
    headers.add("From", from_)
    headers.add("To", to)
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        headers.add("Contact", f"<{contact}>")
    for name, value in extra_headers:
        headers.add(name, value)
    if content_type is not None:
        headers.add("Content-Type", content_type)
    return Request(method, request_uri, headers, body)


def make_dialog_response(
    request: Request,
    status: int,
    *,
    local_tag: str,
    local_contact: str | None,
    reason: str | None = None,
) -> Response:
    """A response to a dialog-creating request (RFC 3261 sections 8.2.6 and 12.1.1): To
    tagged with ``local_tag``, every Record-Route of the request copied in order, and,
    for a 101-299 (which establishes the dialog), Contact ``local_contact``."""
    response = make_response(request, status, reason, to_tag=local_tag)
    for field_ in request.headers.fields("record-route"):
        response.headers.add_wire("record-route", field_.raw)
    if 100 < status < 300:
        if local_contact is None:
            raise LocalProtocolError("a dialog-establishing response needs a Contact")
        response.headers.add("Contact", f"<{local_contact}>")
    return response
