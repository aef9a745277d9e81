"""Settings of calls and of the media relay, as the config file gives them."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

#: A dialable number: digits with an optional leading +, or the extension numbers.
NUMBER_RE: Final = re.compile(r"^\+?[0-9]{1,20}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_number(number: str) -> str:
    if NUMBER_RE.match(number) is None:
        raise ValueError(
            'expected a number of 1 to 20 digits with an optional +, e.g. "+15551230000"'
        )
    return number


Number = Annotated[str, AfterValidator(_check_number)]


class NumberEntry(_Model):
    """One entry of the number table: where calls to this number go and who may call it.
    ``destination`` is ``extension:NUMBER`` (groups, voicemail and IVRs come later).
    ``public`` numbers may be called by anyone (the outside world, trunks); the others
    only by authenticated extensions."""

    destination: str
    public: bool = False

    @field_validator("destination")
    @classmethod
    def _check_destination(cls, value: str) -> str:
        kind, sep, target = value.partition(":")
        if kind != "extension" or not sep or not target:
            raise ValueError('expected "extension:NUMBER"')
        return value

    @property
    def extension(self) -> str:
        return self.destination.partition(":")[2]


class CallSettings(_Model):
    """``ring_timeout``: how long an extension rings before the caller gets 480 (no
    answer). ``max_calls``: calls through the switch at once; more get 503.
    ``untrusted_calls``: what a call from a source that is neither an authenticated
    extension nor a carrier trunk may reach: ``public`` numbers (the default: a provider
    that sends calls without being configured as a trunk still works), or nothing
    (``refuse``: 403, for a switch whose every outside call comes through its trunks).

    Calls out through the trunks: ``emergency_numbers`` always route (the trunks' routes
    pick the trunk, else the first trunk) and need no permission; ``blocked_prefixes``
    are refused 403 and logged whoever dials them; ``max_trunk_calls`` caps the calls
    through all trunks at once (in and out; each trunk's ``max_calls`` caps its own).
    ``confirm_timeout``: how long a hunt member with ``confirm = true`` has, once it
    answered, to press 1 before it is hung up on and the hunt goes on."""

    ring_timeout: Annotated[float, Field(gt=0, le=600)] = 60.0
    max_calls: Annotated[int, Field(ge=1, le=100_000)] = 2000
    untrusted_calls: Literal["public", "refuse"] = "public"
    emergency_numbers: list[Number] = ["112", "911"]
    blocked_prefixes: list[Number] = []
    max_trunk_calls: Annotated[int, Field(ge=1, le=100_000)] | None = None
    confirm_timeout: Annotated[float, Field(gt=0, le=120)] = 15.0


class MediaSettings(_Model):
    """The RTP relay: ``address`` is written into SDP ``c=`` and bound for RTP (default:
    the switch's advertised address); RTP ports are even ports of ``rtp_port_min`` to
    ``rtp_port_max``, RTCP on the next one (two pairs per call); a call without any RTP
    for ``rtp_timeout`` seconds is ended with BYE on both legs (0 turns that off).
    ``latch_any``: latch each side to the first packet from anywhere, for phones behind
    a NAT the switch cannot see through (weaker against RTP hijacking)."""

    address: str | None = None
    rtp_port_min: Annotated[int, Field(ge=1024, le=65534)] = 20000
    rtp_port_max: Annotated[int, Field(ge=1025, le=65535)] = 29999
    rtp_timeout: Annotated[float, Field(ge=0, le=86400)] = 60.0
    latch_any: bool = False

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("expected an IP address") from None
        return value

    @model_validator(mode="after")
    def _range(self) -> MediaSettings:
        first = self.rtp_port_min + (self.rtp_port_min & 1)
        if first + 3 > self.rtp_port_max:
            raise ValueError(
                "expected rtp_port_min < rtp_port_max with room for at least two even RTP ports"
                " and their RTCP ports"
            )
        return self
