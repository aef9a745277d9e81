"""Calls out through the trunks: which trunk a dialled number leaves through, the number
the provider is sent, whether the extension may dial it, and the caller ID it shows.

The switch asks only after the caller authenticated as an extension: nothing that
failed (or skipped) authentication ever reaches a trunk (docs/trunks.md, "Calls out").

* **Emergency numbers** (``[calls] emergency_numbers``) always route: no permission, no
  blocked prefix, and the caller ID is never withheld. The routes pick the trunk as for
  any number; with no matching route the first trunk takes the call unchanged.
* **Routes**: of every trunk's ``routes``, the longest prefix the number starts with
  wins (the first in the config's order on a tie); its ``strip`` and ``add`` make the
  number sent.
* **Blocked prefixes** (``[calls] blocked_prefixes``) match the number as dialled and
  as sent: 403.
* **Permissions**: the route's category (``national``, ``international``) or a prefix
  of the number (as dialled or as sent) must be in the extension's ``permissions``:
  else 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from b2bua.call.actions import Target, TrunkLeg
from b2bua.call.settings import CallSettings
from b2bua.registrar.settings import Extension
from b2bua.sip.digest import DigestAccount
from b2bua.sip.status import StatusCode
from b2bua.trunk.settings import OutboundRoute, Trunk

#: Why a number was refused, as logged and as the reason phrase.
BLOCKED: Final = "Blocked Prefix"
NOT_PERMITTED: Final = "Not Permitted"


@dataclass(frozen=True, slots=True)
class ToTrunk:
    """Dial ``number`` at ``trunk``'s provider, showing ``caller_id`` (withheld from the
    called party with ``Privacy: id`` when ``hide``)."""

    trunk: Trunk
    number: str
    dialled: str
    category: str
    caller_id: str
    hide: bool = False
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


class OutboundPlan:
    def __init__(
        self,
        trunks: Mapping[str, Trunk],
        calls: CallSettings,
        extensions: Mapping[str, Extension],
        *,
        extension_dids: Mapping[str, str],
        group_dids: Mapping[str, str],
    ) -> None:
        """``extension_dids``: an extension's own DID (a number the table maps to it);
        ``group_dids``: the public number of the first hunt group it is a member of."""
        self._trunks = list(trunks.values())
        self._routes: list[tuple[OutboundRoute, Trunk]] = [
            (route, trunk) for trunk in self._trunks for route in trunk.settings.routes
        ]
        self._emergency = frozenset(calls.emergency_numbers)
        self._blocked = tuple(calls.blocked_prefixes)
        self._extensions = extensions
        self._extension_dids = extension_dids
        self._group_dids = group_dids

    @property
    def has_trunks(self) -> bool:
        return bool(self._trunks)

    def is_emergency(self, number: str | None) -> bool:
        return number in self._emergency

    def route(self, dialled: str | None, extension: str) -> ToTrunk | Refused | None:
        """Where ``extension``'s call to ``dialled`` leaves the switch: a trunk, a refusal
        (403 for a blocked or not permitted number), or ``None`` when no trunk route
        takes the number (the caller gets 404)."""
        if not dialled or not _is_number(dialled):
            return None
        if dialled in self._emergency:
            return self._emergency_route(dialled, extension)
        found = self._longest(dialled)
        if found is None:
            return None
        route, trunk = found
        number = route.translate(dialled)
        if any(dialled.startswith(p) or number.startswith(p) for p in self._blocked):
            return Refused(StatusCode.FORBIDDEN, BLOCKED)
        if not self._permitted(extension, route, dialled, number):
            return Refused(StatusCode.FORBIDDEN, NOT_PERMITTED)
        own = self._extensions.get(extension)
        return ToTrunk(
            trunk=trunk,
            number=number,
            dialled=dialled,
            category=route.category,
            caller_id=self.caller_id(trunk, extension),
            hide=own is not None and own.hide_number,
        )

    def forward(self, number: str) -> ToTrunk | None:
        """A number the config forwards calls to (an external hunt member, an
        ``external:`` destination): the route that takes it, with no permission or
        blocked-prefix check (the config chose it). ``caller_id`` is left empty: the
        forwarded call's caller decides it (:func:`forward_target`)."""
        found = self._longest(number)
        if found is None:
            return None
        route, trunk = found
        return ToTrunk(trunk, route.translate(number), number, route.category, caller_id="")

    def caller_id(self, trunk: Trunk, extension: str) -> str:
        """The number ``extension``'s calls show through ``trunk`` (``caller_id``)."""
        settings = trunk.settings
        own, group = self._extension_dids.get(extension), self._group_dids.get(extension)
        chain: list[str | None] = []
        if settings.caller_id == "extension":
            chain = [own, group]
        elif settings.caller_id == "group":
            chain = [group]
        chain += [settings.caller_id_number, settings.username]
        return next((number for number in chain if number), extension)

    def _emergency_route(self, dialled: str, extension: str) -> ToTrunk | None:
        found = self._longest(dialled)
        category: str
        if found is not None:
            route, trunk = found
            number, category = route.translate(dialled), route.category
        elif self._trunks:
            trunk, number, category = self._trunks[0], dialled, "emergency"
        else:
            return None
        return ToTrunk(
            trunk=trunk,
            number=number,
            dialled=dialled,
            category=category,
            caller_id=self.caller_id(trunk, extension),
            emergency=True,
        )

    def _longest(self, dialled: str) -> tuple[OutboundRoute, Trunk] | None:
        best: tuple[OutboundRoute, Trunk] | None = None
        for route, trunk in self._routes:
            if dialled.startswith(route.prefix) and (
                best is None or len(route.prefix) > len(best[0].prefix)
            ):
                best = (route, trunk)
        return best

    def _permitted(self, extension: str, route: OutboundRoute, dialled: str, number: str) -> bool:
        own = self._extensions.get(extension)
        if own is None:
            return False
        for permission in own.permissions:
            if permission == route.category:
                return True
            if permission[0] in "+0123456789" and (
                dialled.startswith(permission) or number.startswith(permission)
            ):
                return True
        return False


#: RFC 3323 section 4.1.1.3: the From of a call whose caller ID is withheld.
ANONYMOUS_FROM: Final = '"Anonymous" <sip:anonymous@anonymous.invalid>'


def account_of(trunk: Trunk) -> DigestAccount | None:
    """The trunk's digest credentials, when it has a secret."""
    settings = trunk.settings
    has_secret = any(
        secret is not None for secret in (settings.password, settings.ha1_md5, settings.ha1_sha256)
    )
    if settings.username is None or not has_secret:
        return None
    return DigestAccount(
        username=settings.username,
        password=settings.password,
        ha1_md5=settings.ha1_md5,
        ha1_sha256=settings.ha1_sha256,
        realm=settings.realm,
    )


def provider_uri(trunk: Trunk, user: str) -> str:
    """``sip:USER@DOMAIN`` at the trunk's provider (its ``domain``, else ``host`` and a
    port other than 5060)."""
    settings = trunk.settings
    host = settings.domain or settings.host
    bracketed = f"[{host}]" if ":" in host else host
    if settings.domain is None and settings.port != 5060:
        bracketed = f"{bracketed}:{settings.port}"
    return f"sip:{user}@{bracketed}"


def trunk_target(route: ToTrunk, display_name: str | None) -> Target:
    """The callee leg of a call out through ``route``: the Request-URI and To name the
    number at the provider; From shows the caller ID (anonymous when withheld), and
    P-Asserted-Identity always asserts it to the provider (RFC 3325), with Privacy
    saying whether the provider may pass it on (RFC 3323)."""
    trunk = route.trunk
    asserted = provider_uri(trunk, route.caller_id)
    if route.hide:
        from_ = ANONYMOUS_FROM
        privacy = "id"
    else:
        name = (display_name or "").replace("\\", "").replace('"', "")
        from_ = f'"{name}" <{asserted}>' if name else f"<{asserted}>"
        privacy = "none"
    uri = provider_uri(trunk, route.number)
    leg = TrunkLeg(
        trunk=trunk.name,
        to=f"<{uri}>",
        from_=from_,
        headers=(("P-Asserted-Identity", f"<{asserted}>"), ("Privacy", privacy)),
        account=account_of(trunk),
    )
    return Target(route.number, uri, trunk.peer, leg)


def forward_target(
    route: ToTrunk,
    *,
    member: str,
    caller: str,
    caller_name: str | None,
    company: str,
    hide: bool,
    reason: str,
    confirm: bool = False,
) -> Target:
    """The leg of a call forwarded out through ``route`` to hunt member ``member``:
    From and P-Asserted-Identity show the original ``caller`` when the trunk allows it
    (``forward_caller_id``) and it is a number, else the ``company`` number; Diversion
    (RFC 5806) names the company number the call was for, and why it left. ``confirm``:
    the person who answers must press 1 before the caller is bridged."""
    trunk = route.trunk
    shown = caller if trunk.settings.forward_caller_id and _is_number(caller) else company
    leg = trunk_target(replace(route, caller_id=shown, hide=hide), caller_name)
    assert leg.trunk is not None
    diversion = f"<{provider_uri(trunk, company)}>;reason={reason};counter=1"
    headers = (*leg.trunk.headers, ("Diversion", diversion))
    forwarded = replace(leg.trunk, headers=headers, member=member, confirm=confirm)
    return replace(leg, trunk=forwarded)


def _is_number(text: str) -> bool:
    digits = text.removeprefix("+")
    return bool(digits) and digits.isascii() and digits.isdigit()
