"""Answering a carrier's digest challenge to a call we send through its trunk (RFC 3261
section 22.2; RFC 7616 for SHA-256). The registration client answers challenges to
REGISTER the same way (:mod:`b2bua.trunk.registration`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from b2bua.call.actions import TrunkAccount
from b2bua.sip.digest import Algorithm, Challenge, answer_challenge, parse_challenge
from b2bua.sip.errors import SipError

#: The stronger algorithm first, when a provider offers both (RFC 8760 section 3).
PREFERENCE: Final = {Algorithm.SHA256: 0, Algorithm.MD5: 1}


def secret_for(account: TrunkAccount, algorithm: Algorithm) -> tuple[str | None, str | None]:
    """(password, ha1) that answer ``algorithm``; (None, None) when neither does."""
    if account.password is not None:
        return account.password, None
    return None, account.ha1_md5 if algorithm is Algorithm.MD5 else account.ha1_sha256


def answer_trunk_challenge(
    account: TrunkAccount, values: Iterable[str], *, method: str, uri: str, cnonce: str
) -> str | None:
    """The credentials answering the best challenge of ``values`` (the header field
    values of a 401's WWW-Authenticate or a 407's Proxy-Authenticate), or ``None`` when
    none can be answered: not digest, another realm than the account's fixed one, an
    algorithm we hold no secret for."""
    usable: list[Challenge] = []
    for value in values:
        try:
            challenge = parse_challenge(value)
        except SipError:
            continue
        if account.realm is not None and challenge.realm != account.realm:
            continue
        if secret_for(account, challenge.algorithm) != (None, None):
            usable.append(challenge)
    for challenge in sorted(usable, key=lambda c: PREFERENCE.get(c.algorithm, 9)):
        password, ha1 = secret_for(account, challenge.algorithm)
        try:
            return answer_challenge(
                challenge,
                username=account.username,
                password=password,
                ha1=ha1,
                method=method,
                uri=uri,
                cnonce=cnonce,
                nc=1,
            )
        except SipError:
            continue  # characters we cannot echo in its nonce, realm or opaque
    return None


def any_stale(values: Iterable[str]) -> bool:
    """Whether a challenge of ``values`` says stale=true: our answer was right but its
    nonce expired (RFC 7616 section 3.3), so answering again is not a guess."""
    for value in values:
        try:
            if parse_challenge(value).stale:
                return True
        except SipError:
            continue
    return False
