"""What voicemail is configured with: the ``[voicemail]`` table (defaults for every mailbox,
the message-waiting lamp, the SMTP server for e-mails) and each extension's mailbox
(``mailbox = true | false`` or a table). Frozen pydantic models, composed by
:mod:`b2bua.config`; every field is documented in configs/example.toml.

A mailbox's limits left unset take the ``[voicemail]`` defaults: :meth:`Mailbox.resolve`
gives the effective values in one frozen object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

#: A PIN for retrieving messages by phone: 4 to 12 digits.
PIN_RE: Final = re.compile(r"^[0-9]{4,12}$")
#: An e-mail address as far as a config check can tell (one @, something either side).
EMAIL_RE: Final = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _matching(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.fullmatch(value) is None:
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


Pin = Annotated[str, _matching(PIN_RE, "a PIN of 4 to 12 digits, in quotes")]
Email = Annotated[str, _matching(EMAIL_RE, 'an e-mail address, e.g. "mary@example.com"')]
MessageLength = Annotated[float, Field(gt=0, le=3600)]
MinimumLength = Annotated[float, Field(ge=0, le=60)]
MessageCount = Annotated[int, Field(ge=1, le=10_000)]


class SmtpSettings(_Model):
    """``[voicemail.smtp]``: where message e-mails go out. ``from`` is the sender address;
    ``starttls`` upgrades the connection before logging in; ``username`` and ``password``
    (both or neither) log in. A mail that fails is tried again ``attempts`` times in all,
    ``retry_interval`` seconds apart, doubling each time."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: Email = Field(alias="from")
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    attempts: Annotated[int, Field(ge=1, le=100)] = 5
    retry_interval: Annotated[float, Field(gt=0, le=86400)] = 60.0

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password to log in, or neither")
        return self


class VoicemailSettings(_Model):
    """``[voicemail]``: the defaults of every mailbox (``max_message_length``,
    ``min_message_length``, ``max_messages``: messages kept per mailbox, a caller to a full
    one hears the greeting and is not recorded), ``silence_timeout`` (0: off), the default
    ``greeting`` (an 8 kHz mono 16-bit WAV; unset: the prompt the project generates),
    ``unsolicited_notify`` (send the lamp's NOTIFY to registered phones that did not
    SUBSCRIBE: many desk phones expect it) and ``smtp`` (unset: no e-mail)."""

    max_message_length: MessageLength = 180.0
    min_message_length: MinimumLength = 1.0
    max_messages: MessageCount = 100
    silence_timeout: Annotated[float, Field(ge=0, le=600)] = 10.0
    greeting: str | None = None
    unsolicited_notify: bool = True
    smtp: SmtpSettings | None = None


class MailboxSettings(_Model):
    """An extension's mailbox as a table: ``[extensions."101".mailbox]``. ``greeting``: its
    own 8 kHz mono WAV; ``email``: where its messages are sent; ``pin``: for listening by
    phone; the limits override ``[voicemail]``'s."""

    enabled: bool = True
    greeting: str | None = None
    email: Email | None = None
    pin: Pin | None = None
    max_message_length: MessageLength | None = None
    min_message_length: MinimumLength | None = None
    max_messages: MessageCount | None = None


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox as it runs: every limit decided."""

    number: str
    greeting: str | None
    email: str | None
    pin: str | None
    max_message_length: float
    min_message_length: float
    max_messages: int
    silence_timeout: float | None  # None: off

    @classmethod
    def resolve(cls, number: str, own: MailboxSettings, defaults: VoicemailSettings) -> Mailbox:
        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(
            number=number,
            greeting=own.greeting or defaults.greeting,
            email=own.email,
            pin=own.pin,
            max_message_length=pick(own.max_message_length, defaults.max_message_length),
            min_message_length=pick(own.min_message_length, defaults.min_message_length),
            max_messages=own.max_messages or defaults.max_messages,
            silence_timeout=defaults.silence_timeout or None,
        )
