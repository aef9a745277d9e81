"""Carrier trunks in the config (``[trunks.NAME]``), and the trunk the switch runs with.

A trunk is a SIP provider account. Two kinds, often both at once:

* **registration trunk** (``register = true``): the switch REGISTERs a contact of its own
  with the provider (:mod:`b2bua.trunk.registration`), and the provider sends the DID's
  calls to that contact. The usual case for an office behind NAT.
* **IP trunk** (``register = false``): the provider sends INVITEs to the switch's address
  from addresses it publishes; those addresses are the trunk's ``allow`` list.

Either way a request is the trunk's only when it comes from an address of ``allow`` (by
default the addresses the provider's ``host`` resolves to): being sent to the trunk's
contact is not enough, since anyone can write a Request-URI.

:class:`TrunkSettings` is what the file says; :class:`Trunk` is a trunk with its host
resolved (the shell resolves names before the pure switch sees them).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from b2bua.sip.address import Peer, Transport

#: A trunk's name: used in logs, /status and routes.
TRUNK_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
#: A SIP user part we write ourselves (Contact user, digest username): RFC 3261 section 25.1
#: unreserved characters and the user-unreserved ones that need no escaping.
_USER_RE: Final = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,64}$")
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HEX_RE: Final = re.compile(r"^[0-9a-f]+$")

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_host(value: str) -> str:
    host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
            raise ValueError(f"expected a host name or IP address, got {value!r}") from None
    return host


def parse_network(text: str) -> Network:
    """``203.0.113.5`` (one address) or ``203.0.113.0/24`` (a network, host bits zero)."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise ValueError(
            f"{text!r}: expected an IP address or a network like 203.0.113.0/24 ({error})"
        ) from None


#: A number as the dial plan writes it: digits, optionally after a leading +.
_NUMBER_RE: Final = re.compile(r"^\+?[0-9]{1,32}$")
_PREFIX_RE: Final = re.compile(r"^\+?[0-9]{0,32}$")

#: What an outbound route reaches, for extensions' ``permissions``.
Category: TypeAlias = Literal["national", "international"]


def check_number(value: str) -> str:
    if _NUMBER_RE.match(value) is None:
        raise ValueError(f"{value!r}: expected digits, optionally after a leading +")
    return value


def check_prefix(value: str) -> str:
    if _PREFIX_RE.match(value) is None:
        raise ValueError(f"{value!r}: expected digits (or none), optionally after a leading +")
    return value


class OutboundRoute(_Model):
    """``[[trunks.NAME.routes]]``: a dialled number that starts with ``prefix`` leaves
    through this trunk (the longest matching prefix of all trunks wins), with ``strip``
    leading characters removed and ``add`` put in front. ``category`` is what an
    extension needs in its ``permissions`` to dial it."""

    prefix: str
    strip: Annotated[int, Field(ge=0, le=32)] = 0
    add: str = ""
    category: Category = "national"

    @field_validator("prefix", "add")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return check_prefix(value)

    @model_validator(mode="after")
    def _strip_within_prefix(self) -> OutboundRoute:
        if self.strip > len(self.prefix):
            raise ValueError(
                f"strip = {self.strip} removes more than the prefix {self.prefix!r}: "
                "only the matched prefix may be stripped"
            )
        return self

    def translate(self, number: str) -> str:
        """The number sent to the provider for dialled ``number`` (which starts with
        ``prefix``)."""
        return self.add + number[self.strip :]


class TrunkSettings(_Model):
    """One provider account, ``[trunks.NAME]``.

    ``host``/``port``/``transport``: where the provider's registrar and proxy are.
    ``username`` with ``password`` (or ``ha1_md5``/``ha1_sha256``, the digests of
    ``username:realm:password``, which need a fixed ``realm``): the account's digest
    credentials. ``domain``: the domain of the account's address of record (default:
    ``host``). ``register``: keep a contact registered (``expires`` asked for;
    ``contact_user`` is the user part of that contact, by default ``username``;
    ``retry_min``/``retry_max`` bound the back-off after a failure; ``keepalive``
    seconds between keep-alives that hold the NAT pinhole open, 0 for none).
    ``allow``: the provider's source addresses or networks; by default the addresses
    ``host`` resolves to. ``did_from``: where an inbound INVITE's dialled number (DID) is
    read: the Request-URI's user, the To header's user, or ``contact``: the trunk's own
    ``contact_user`` (for a provider that sends every call to the registered contact
    and names the DID nowhere else). ``max_calls``: calls through this trunk at once
    (more get 503); unset, only ``[calls] max_calls`` limits them.

    Outbound: ``routes`` (:class:`OutboundRoute`) say which dialled numbers leave through
    this trunk. ``caller_id`` is the number the called party sees: ``extension`` (the
    DID the number table maps to the calling extension), ``group`` (the public number of
    its first hunt group) or ``fixed`` (``caller_id_number``); each falls back to the
    next, then to ``caller_id_number``, then to ``username``. ``forward_caller_id``: a
    call the switch forwards out (an external hunt member, ``external:`` overflow)
    shows the original caller's number, for providers that allow it; else the company
    number, as for calls out.
    """

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    transport: str = "udp"
    username: str | None = None
    password: Annotated[str, Field(min_length=1)] | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    realm: str | None = None
    domain: str | None = None
    registration: bool = Field(False, alias="register")
    expires: Annotated[int, Field(ge=1, le=86400)] = 3600
    contact_user: str | None = None
    retry_min: Annotated[float, Field(gt=0, le=3600)] = 5.0
    retry_max: Annotated[float, Field(gt=0, le=86400)] = 300.0
    keepalive: Annotated[float, Field(ge=0, le=3600)] = 30.0
    allow: list[str] | None = None
    did_from: Literal["request_uri", "to", "contact"] = "request_uri"
    max_calls: Annotated[int, Field(ge=1, le=100_000)] | None = None
    routes: list[OutboundRoute] = []
    caller_id: Literal["extension", "group", "fixed"] = "extension"
    caller_id_number: str | None = None
    forward_caller_id: bool = True

    @field_validator("caller_id_number")
    @classmethod
    def _valid_caller_id(cls, value: str | None) -> str | None:
        return None if value is None else check_number(value)

    @field_validator("transport")
    @classmethod
    def _valid_transport(cls, value: str) -> str:
        if value.lower() not in ("udp", "tcp"):
            raise ValueError(f"{value!r}: expected udp or tcp (TLS is not built yet)")
        return value.lower()

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return _check_host(value)

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str | None) -> str | None:
        return None if value is None else _check_host(value)

    @field_validator("username", "contact_user")
    @classmethod
    def _valid_user(cls, value: str | None) -> str | None:
        if value is not None and _USER_RE.match(value) is None:
            raise ValueError("expected 1 to 64 characters: letters, digits and -_.!~*'()&=+$,;?/")
        return value

    @field_validator("realm")
    @classmethod
    def _valid_realm(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in '"\\\r\n')):
            raise ValueError("expected a non-empty realm without quotes or backslashes")
        return value

    @field_validator("ha1_md5", "ha1_sha256")
    @classmethod
    def _valid_ha1(cls, value: str | None, info: object) -> str | None:
        if value is None:
            return value
        length = 32 if getattr(info, "field_name", "") == "ha1_md5" else 64
        if len(value) != length or _HEX_RE.match(value) is None:
            raise ValueError(f"expected {length} lower-case hex digits")
        return value

    @field_validator("allow")
    @classmethod
    def _valid_allow(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError(
                "an empty list would refuse every call from the provider; leave it out "
                "to allow the addresses host resolves to"
            )
        for item in value:
            parse_network(item)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrunkSettings:
        problems = []
        has_ha1 = self.ha1_md5 is not None or self.ha1_sha256 is not None
        if self.password is not None and has_ha1:
            problems.append("give either a password or an HA1, not both")
        if has_ha1 and self.realm is None:
            problems.append("an HA1 is tied to one realm: give realm as well")
        has_secret = self.password is not None or has_ha1
        if (has_secret or self.registration) and self.username is None:
            problems.append("give username (the account's digest user name)")
        if self.registration and not has_secret:
            problems.append("register = true needs password (or ha1_md5 / ha1_sha256)")
        if self.retry_max < self.retry_min:
            problems.append(f"retry_max {self.retry_max} is below retry_min {self.retry_min}")
        if self.did_from == "contact" and not self.registration:
            problems.append('did_from = "contact" needs register = true (it names our contact)')
        if self.caller_id == "fixed" and self.caller_id_number is None:
            problems.append('caller_id = "fixed" needs caller_id_number')
        prefixes = [route.prefix for route in self.routes]
        doubled = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if doubled:
            problems.append(f"routes: prefix {', '.join(map(repr, doubled))} given twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def networks(self) -> tuple[Network, ...] | None:
        """The configured allow-list, or ``None`` for "the addresses host resolves to"."""
        return None if self.allow is None else tuple(parse_network(n) for n in self.allow)


def check_trunk_name(name: str) -> str:
    if TRUNK_NAME_RE.match(name) is None:
        raise ValueError(
            "expected a trunk name of 1 to 32 letters, digits, - and _ (starting with a "
            "letter or digit)"
        )
    return name


@dataclass(frozen=True, slots=True)
class Trunk:
    """A trunk the switch runs with: its settings, where its provider is (``peer``,
    an IP address), and the source networks it accepts requests from."""

    name: str
    settings: TrunkSettings
    peer: Peer
    networks: tuple[Network, ...]

    @property
    def contact_user(self) -> str | None:
        return self.settings.contact_user or self.settings.username

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    @classmethod
    def resolved(cls, name: str, settings: TrunkSettings, addresses: list[str]) -> Trunk:
        """``addresses``: what ``settings.host`` resolves to (the first is used to send)."""
        if not addresses:
            raise ValueError(f"trunk {name}: host {settings.host} resolves to no address")
        networks = settings.networks
        if networks is None:
            networks = tuple(ipaddress.ip_network(a) for a in addresses)
        transport = Transport.TCP if settings.transport == "tcp" else Transport.UDP
        peer = Peer(transport, addresses[0], settings.port)
        return cls(name, settings, peer, networks)
