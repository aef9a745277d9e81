"""The configuration file: TOML (stdlib ``tomllib``) validated into frozen pydantic models.

:func:`load_config` reports EVERY error in one go, each with its TOML path and what was
expected, by raising :class:`ConfigError`. Unknown keys are errors, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from b2bua.call.settings import CallSettings, MediaSettings, Number, NumberEntry
from b2bua.hunt.model import HuntGroup, ToExternal, parse_destination
from b2bua.hunt.settings import GroupName, GroupSettings, build_groups, check_groups
from b2bua.registrar.settings import Extensions, RegistrarSettings, SecuritySettings
from b2bua.sip.address import Transport
from b2bua.trunk.settings import TrunkSettings, check_trunk_name
from b2bua.voicemail.settings import Mailbox, VoicemailSettings

#: Separates a location from its message in errors of checks that span sections.
CROSS_CHECK_MARK = " :: "


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """``udp:127.0.0.1:5060``: a transport, an IP address to bind and a port (0 = any)."""

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        scheme, sep, rest = text.partition(":")
        if not sep or scheme.lower() not in ("udp", "tcp"):
            raise ValueError(f"{text!r}: expected 'udp:HOST:PORT' or 'tcp:HOST:PORT'")
        host, colon, port_text = rest.rpartition(":")
        if not colon or not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"{text!r}: expected a port number from 0 to 65535 after the host")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: expected an IP address to bind, got {host!r}") from None
        return cls(Transport(scheme.upper()), host, int(port_text))


def _check_listen(value: str) -> str:
    ListenAddress.parse(value)
    return value


ListenText = Annotated[str, AfterValidator(_check_listen)]
TrunkName = Annotated[str, AfterValidator(check_trunk_name)]


class ServerSettings(_Model):
    listen: Annotated[list[ListenText], Field(min_length=1)] = [
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
    ]
    advertised_address: str | None = None
    domain: str | None = None
    realm: str | None = None
    data_dir: str = "data"
    user_agent: str = "b2bua"
    #: SIGTERM: how long calls in progress may go on (new ones get 503) before the
    #: switch ends them with BYE and exits (docs/operations.md).
    drain_timeout: Annotated[float, Field(ge=0, le=86400)] = 30.0

    @field_validator("advertised_address", "domain")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in ' \t;,<>@:"')):
            raise ValueError("expected a host name or IP address")
        return value

    @field_validator("realm")
    @classmethod
    def _check_realm(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in '"\\\r\n')):
            raise ValueError("expected a non-empty realm without quotes or backslashes")
        return value

    @property
    def listen_addresses(self) -> list[ListenAddress]:
        return [ListenAddress.parse(item) for item in self.listen]


class SipSettings(_Model):
    """RFC 3261 timer bases (section 17) and the parser's limits."""

    t1: Annotated[float, Field(gt=0, le=10)] = 0.5
    t2: Annotated[float, Field(gt=0, le=60)] = 4.0
    t4: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_message_size: Annotated[int, Field(ge=1024, le=65535)] = 65535
    max_headers: Annotated[int, Field(ge=10, le=1000)] = 100
    max_line_length: Annotated[int, Field(ge=256, le=65535)] = 8192


class StatusSettings(_Model):
    """The HTTP status server (JSON at /status)."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    #: When set, every path but /healthz wants ``Authorization: Bearer <token>``.
    token: str | None = None

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_http_listen(value)
        return value

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        # RFC 6750 section 2.1:
        # b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        if value is not None and re.fullmatch(r"[A-Za-z0-9._~+/-]{16,}=*", value) is None:
            raise ValueError(
                "expected at least 16 characters of letters, digits and - . _ ~ + / "
                "(a bearer token, RFC 6750)"
            )
        return value


def parse_http_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` (or ``[::1]:8080``) -> (host, port); port 0 picks a free one."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT with a port from 0 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address to bind, got {host!r}") from None
    return host, int(port)


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class Config(_Model):
    server: ServerSettings = ServerSettings()
    sip: SipSettings = SipSettings()
    registrar: RegistrarSettings = RegistrarSettings()
    security: SecuritySettings = SecuritySettings()
    status: StatusSettings = StatusSettings()
    log: LogSettings = LogSettings()
    calls: CallSettings = CallSettings()
    media: MediaSettings = MediaSettings()
    extensions: Extensions = {}
    numbers: dict[Number, NumberEntry] = {}
    groups: dict[GroupName, GroupSettings] = {}
    voicemail: VoicemailSettings = VoicemailSettings()
    trunks: dict[TrunkName, TrunkSettings] = {}

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        """Checks that span sections, all of them at once (each error names its place)."""
        errors = (
            self._numbers_reach_extensions()
            + self._ha1_covers_offered_algorithms()
            + self._group_errors()
            + self._emergency_errors()
            + self._external_errors()
            + self._trunk_transport_errors()
        )
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def mailboxes(self) -> dict[str, Mailbox]:
        """Every extension's mailbox, its limits decided, by extension number."""
        out: dict[str, Mailbox] = {}
        for number, extension in self.extensions.items():
            own = extension.mailbox_settings
            if own is not None:
                out[number] = Mailbox.resolve(number, own, self.voicemail)
        return out

    def hunt_groups(self) -> dict[str, HuntGroup]:
        """The groups as the switch and ``b2bua simulate`` run them."""
        mailboxes = [number for number, ext in self.extensions.items() if ext.has_mailbox]
        return build_groups(self.groups, mailboxes)

    def _numbers_reach_extensions(self) -> list[str]:
        missing = [
            f"numbers.{number}.destination{CROSS_CHECK_MARK}no extension {entry.extension}"
            " in [extensions]"
            for number, entry in self.numbers.items()
            if entry.extension not in self.extensions
        ]
        shadowed = [
            f"numbers.{number}{CROSS_CHECK_MARK}{number} is already an extension's number"
            for number in self.numbers
            if number in self.extensions
        ]
        return missing + shadowed

    def _group_errors(self) -> list[str]:
        # Members, destinations and numbers of [groups] against the extensions, the
        # number table and each other (b2bua.hunt.settings.check_groups).
        mailboxes = {number: ext.has_mailbox for number, ext in self.extensions.items()}
        problems = check_groups(self.groups, mailboxes, self.numbers.keys())
        return [f"{where}{CROSS_CHECK_MARK}{what}" for where, what in problems]

    def _emergency_errors(self) -> list[str]:
        # An emergency number must leave through a trunk: an internal number of the same
        # digits would take its calls.
        internal = set(self.extensions) | set(self.numbers)
        for group in self.groups.values():
            internal |= set(group.numbers) | set(group.public_numbers)
        return [
            f"calls.emergency_numbers{CROSS_CHECK_MARK}{number} is also an internal number "
            "(an extension, a group's number or [numbers]); emergency calls must reach a trunk"
            for number in self.calls.emergency_numbers
            if number in internal
        ]

    def _trunk_transport_errors(self) -> list[str]:
        # A trunk speaks from the switch's own listening socket of its transport.
        listening = {address.transport.value.lower() for address in self.server.listen_addresses}
        return [
            f"trunks.{name}.transport{CROSS_CHECK_MARK}the switch does not listen on "
            f'{trunk.transport}: add "{trunk.transport}:HOST:PORT" to server.listen'
            for name, trunk in self.trunks.items()
            if trunk.transport not in listening
        ]

    def _external_errors(self) -> list[str]:
        # An external member or destination leaves through a trunk: some trunk route
        # must take its number.
        prefixes = [route.prefix for trunk in self.trunks.values() for route in trunk.routes]
        errors = []
        for name, group in self.groups.items():
            places = [
                (f"groups.{name}.members[{index}].external", member.external)
                for index, member in enumerate(group.members)
                if member.external is not None
            ]
            places += [
                (f"groups.{name}.destinations.{reason.value}", destination.number)
                for reason, text in group.destinations.chosen()
                if isinstance(destination := parse_destination(text), ToExternal)
            ]
            errors += [
                f"{where}{CROSS_CHECK_MARK}no trunk route takes {number}: add a "
                "[[trunks.NAME.routes]] whose prefix it starts with"
                for where, number in places
                if not any(number.startswith(prefix) for prefix in prefixes)
            ]
        return errors

    def _ha1_covers_offered_algorithms(self) -> list[str]:
        # An HA1 verifies only answers to its own algorithm; a phone that answers the
        # first challenge it supports would loop on 401 otherwise.
        missing = [
            f"extensions.{number}{CROSS_CHECK_MARK}no HA1 for {algorithm}, which "
            "registrar.algorithms offers"
            for number, ext in self.extensions.items()
            if ext.password is None
            for algorithm in self.registrar.algorithms
            if {"MD5": ext.ha1_md5, "SHA-256": ext.ha1_sha256}[algorithm] is None
        ]
        return missing

    @property
    def domain(self) -> str:
        """The SIP domain of the extensions' addresses of record."""
        if self.server.domain:
            return self.server.domain
        if self.server.advertised_address:
            return self.server.advertised_address
        return self.server.listen_addresses[0].host

    @property
    def realm(self) -> str:
        """The digest realm (RFC 3261 section 22.1): by default the domain."""
        return self.server.realm or self.domain


class ConfigError(Exception):
    """A configuration that cannot be used; ``errors`` lists (location, message) pairs."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)")

    def lines(self) -> list[str]:
        return [f"{self.source}: {loc}: {msg}" for loc, msg in self.errors]


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate parsed TOML; raise ConfigError with every problem found."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (not one this version understands)"
            elif "input" in err and err["type"] not in ("missing", "value_error"):
                message = f"{message} (got {err['input']!r})"
            location = _location(tuple(err["loc"]))
            if location == "(top level)" and CROSS_CHECK_MARK in message:
                # Checks across sections name their own places: "where: what; ...".
                for part in message.split("; "):
                    where, _, what = part.partition(CROSS_CHECK_MARK)
                    errors.append((where, what))
                continue
            errors.append((location, message))
        raise ConfigError(source, errors) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file; raise ConfigError listing every error."""
    source = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [("(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, [("(file)", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("(syntax)", str(exc))]) from None
    return parse_config(data, source)
