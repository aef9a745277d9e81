"""What the registrar and the authenticator are configured with: extensions (accounts),
registration timing, digest choices and brute-force limits. Frozen pydantic models,
composed by :mod:`b2bua.config`; every field is documented in configs/example.toml.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from b2bua.voicemail.settings import MailboxSettings

#: An extension number: digits only, kept as a string so "0101" stays 0101.
EXTENSION_NUMBER_RE: Final = re.compile(r"^[0-9]{1,15}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hex_digest(length: int) -> AfterValidator:
    def check(value: str) -> str:
        if re.fullmatch(rf"[0-9a-fA-F]{{{length}}}", value) is None:
            raise ValueError(f"expected {length} hexadecimal digits")
        return value.lower()

    return AfterValidator(check)


def _mailbox(value: Any) -> Any:
    """``mailbox = true | false`` is short for a table with only ``enabled``."""
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, str):
        raise ValueError('expected true, false or a table [extensions."NUMBER".mailbox]')
    return value


#: What an extension may dial out (``permissions``): a category of the trunks' routes,
#: or a number prefix (digits, optionally after +) that it may dial whatever its category.
PERMISSION_CATEGORIES: Final = ("internal", "national", "international")
_PERMISSION_PREFIX_RE: Final = re.compile(r"^\+?[0-9]{1,32}$")


def _permission(value: str) -> str:
    if value not in PERMISSION_CATEGORIES and _PERMISSION_PREFIX_RE.match(value) is None:
        raise ValueError(
            f"{value!r}: expected internal, national, international or a number prefix "
            "(digits, optionally after +)"
        )
    return value


class Extension(_Model):
    """One extension: a staff phone line. Either ``password`` or a precomputed HA1
    (``ha1_md5`` and/or ``ha1_sha256``: MD5/SHA-256 of ``number:realm:password``; an HA1
    only verifies answers to challenges of its own algorithm and realm).

    ``permissions``: what it may dial through the trunks (calls between extensions and
    emergency numbers need none): ``national``, ``international`` (the routes'
    categories) or number prefixes, e.g. ``["national", "+3519"]``. ``hide_number``:
    its calls out ask the provider to withhold the caller ID (``Privacy: id``)."""

    name: str = ""
    password: Annotated[str, Field(min_length=8)] | None = None
    ha1_md5: Annotated[str, _hex_digest(32)] | None = None
    ha1_sha256: Annotated[str, _hex_digest(64)] | None = None
    max_calls: Annotated[int, Field(ge=1, le=100)] = 1
    dnd: bool = False
    mailbox: Annotated[MailboxSettings, BeforeValidator(_mailbox)] = MailboxSettings()
    qualify: Annotated[float, Field(ge=0, le=3600)] = 0.0
    permissions: list[Annotated[str, AfterValidator(_permission)]] = []
    hide_number: bool = False

    @model_validator(mode="after")
    def _one_secret(self) -> Extension:
        has_ha1 = self.ha1_md5 is not None or self.ha1_sha256 is not None
        if self.password is None and not has_ha1:
            raise ValueError("give the extension a password (or ha1_md5 / ha1_sha256)")
        if self.password is not None and has_ha1:
            raise ValueError("give either a password or an HA1, not both")
        return self

    @property
    def mailbox_settings(self) -> MailboxSettings | None:
        """Its mailbox, or None when it has none (``mailbox = false``)."""
        return self.mailbox if self.mailbox.enabled else None

    @property
    def has_mailbox(self) -> bool:
        return self.mailbox.enabled


Algorithm = Literal["MD5", "SHA-256"]


class RegistrarSettings(_Model):
    """RFC 3261 section 10.3 timing and the digest offer (RFC 8760: one challenge per
    algorithm, in this order; clients take the first one they support)."""

    min_expires: Annotated[int, Field(ge=1, le=86400)] = 60
    max_expires: Annotated[int, Field(ge=1, le=86400)] = 3600
    default_expires: Annotated[int, Field(ge=1, le=86400)] = 3600
    max_contacts: Annotated[int, Field(ge=1, le=100)] = 10
    # MD5 alone by default: baresip 1.0.0 refuses a 401 that names SHA-256 at all, and
    # SIPp and many desk phones answer only MD5 (see configs/example.toml).
    algorithms: Annotated[list[Algorithm], Field(min_length=1)] = ["MD5"]
    nonce_lifetime: Annotated[float, Field(ge=10, le=3600)] = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> RegistrarSettings:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("expected min_expires <= default_expires <= max_expires")
        if len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("each algorithm may appear once in algorithms")
        return self


class SecuritySettings(_Model):
    """Brute-force protection: after ``max_failures`` failed authentications from one
    source address within ``failure_window`` seconds, the source is blocked for
    ``block_time`` seconds. ``block_action`` "drop" answers nothing, "forbidden" 403.
    A source that also holds valid registrations (an office behind one NAT address) is
    blocked only for the failing username, never as a whole."""

    max_failures: Annotated[int, Field(ge=1, le=10000)] = 10
    failure_window: Annotated[float, Field(gt=0, le=86400)] = 60.0
    block_time: Annotated[float, Field(gt=0, le=604800)] = 600.0
    block_action: Literal["drop", "forbidden"] = "drop"


def _check_number(number: str) -> str:
    if EXTENSION_NUMBER_RE.match(number) is None:
        raise ValueError('expected an extension number of 1 to 15 digits, e.g. [extensions."0101"]')
    return number


ExtensionNumber = Annotated[str, AfterValidator(_check_number)]
Extensions = dict[ExtensionNumber, Extension]
