"""Authenticator: digest authentication of requests from extensions (RFC 3261 section
22, RFC 7616, RFC 8760), with no user enumeration and brute-force blocking.

REGISTER is challenged with 401 and WWW-Authenticate; any other request with 407 and
Proxy-Authenticate (section 22.3). An unknown user and a wrong password take the same
path: the same hashing (against a decoy HA1 for the unknown user), the same 403, the same
headers. A nonce that is not ours gets a fresh challenge; a stale one (right password)
gets ``stale=true`` so that phones retry silently; a replayed nonce-count is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from structlog.typing import FilteringBoundLogger

from b2bua.registrar.guard import AuthGuard
from b2bua.registrar.settings import Extension, SecuritySettings
from b2bua.sip.digest import (
    Algorithm,
    Credentials,
    NonceKeeper,
    NonceState,
    Password,
    Secret,
    StoredHa1,
    ha1_for,
    make_challenges,
    parse_credentials,
    verify,
)
from b2bua.sip.errors import ParseError
from b2bua.sip.message import Request
from b2bua.sip.status import StatusCode


@dataclass(frozen=True, slots=True)
class Authenticated:
    username: str
    algorithm: Algorithm


@dataclass(frozen=True, slots=True)
class Refused:
    """Answer with ``status`` (401/407 challenge, 403, 400) and ``headers``."""

    status: int
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A blocked source whose requests are dropped without an answer."""


AuthResult: TypeAlias = Authenticated | Refused | Ignored


def secret_of(extension: Extension) -> Secret:
    if extension.password is not None:
        return Password(extension.password)
    return StoredHa1(md5=extension.ha1_md5, sha256=extension.ha1_sha256)


class Authenticator:
    """Decides whether a request carries valid credentials for an extension."""

    def __init__(
        self,
        *,
        realm: str,
        extensions: Mapping[str, Extension],
        algorithms: list[Algorithm],
        security: SecuritySettings,
        guard: AuthGuard,
        nonces: NonceKeeper,
        decoy_key: bytes,
        log: FilteringBoundLogger,
    ) -> None:
        self.realm = realm
        self._secrets = {number: secret_of(ext) for number, ext in extensions.items()}
        self._algorithms = algorithms
        self._security = security
        self.guard = guard
        self._nonces = nonces
        self._decoy_key = decoy_key
        self._log = log
        self._ha1_cache: dict[tuple[str, Algorithm], str] = {}

    def set_extensions(self, extensions: Mapping[str, Extension]) -> None:
        """The accounts after a reload: new ones authenticate from now on, removed ones
        no longer do, and a changed password or HA1 is the only one accepted."""
        self._secrets = {number: secret_of(ext) for number, ext in extensions.items()}
        self._ha1_cache.clear()

    def authenticate(self, request: Request, source: str, now: float) -> AuthResult:
        """``source`` is the address the request came from (for blocking)."""
        proxy = request.method != "REGISTER"
        if self.guard.is_blocked(source, None, now):
            return self._blocked()
        header = "proxy-authorization" if proxy else "authorization"
        try:
            credentials = self._our_credentials(request.headers.get_all(header))
        except ParseError as exc:
            return Refused(
                StatusCode.BAD_REQUEST,
                f"Malformed {'Proxy-' if proxy else ''}Authorization: {exc.reason}",
            )
        if credentials is None:
            return self._challenge(proxy, now, stale=False)
        username = credentials.username
        if self.guard.is_blocked(source, username, now):
            return self._blocked()
        nonce_state = self._nonces.check(credentials.nonce, now)
        if nonce_state is NonceState.INVALID:
            # Not a nonce we issued (or one from before a restart): challenge afresh.
            return self._challenge(proxy, now, stale=False)
        if credentials.algorithm not in self._algorithms:
            return self._challenge(proxy, now, stale=False)
        ha1 = self._ha1(username, credentials.algorithm)
        if not verify(credentials, method=request.method, ha1=ha1) or username not in self._secrets:
            return self._failed(source, username, now)
        if nonce_state is NonceState.STALE:
            self._log.info("nonce_stale", source=source, username=username)
            return self._challenge(proxy, now, stale=True)
        if not self._nonces.accept_nc(credentials.nonce, credentials.nc or 1, now):
            # A nonce-count seen before: a replay (or a forgotten nonce). A real phone
            # retries silently with a new nonce; a replayer gets nowhere.
            self._log.warning("digest_replay_refused", source=source, username=username)
            return self._challenge(proxy, now, stale=True)
        self.guard.record_success(source, username)
        return Authenticated(username, credentials.algorithm)

    # -- answers

    def _challenge(self, proxy: bool, now: float, *, stale: bool) -> Refused:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        status = StatusCode.PROXY_AUTHENTICATION_REQUIRED if proxy else StatusCode.UNAUTHORIZED
        values = make_challenges(self.realm, self._nonces.issue(now), None, self._algorithms, stale)
        return Refused(status, headers=[(name, value) for value in values])

    def _failed(self, source: str, username: str, now: float) -> AuthResult:
        block = self.guard.record_failure(source, username, now)
        self._log.info("auth_failed", source=source, username=username)
        if block is not None:
            self._log.warning(
                "source_blocked",
                source=source,
                username=block.username,
                failures=block.failures,
                seconds=self._security.block_time,
            )
        # The same answer for an unknown user and a wrong password.
        return Refused(StatusCode.FORBIDDEN)

    def _blocked(self) -> AuthResult:
        if self._security.block_action == "drop":
            return Ignored()
        return Refused(StatusCode.FORBIDDEN)

    # -- helpers

    def _our_credentials(self, values: list[str]) -> Credentials | None:
        """The credentials for our realm among possibly several (section 22.3)."""
        for value in values:
            credentials = parse_credentials(value)
            if credentials.realm == self.realm:
                return credentials
        return None

    def _ha1(self, username: str, algorithm: Algorithm) -> str:
        key = (username, algorithm)
        cached = self._ha1_cache.get(key)
        if cached is not None:
            return cached
        secret = self._secrets.get(username)
        ha1 = None
        if secret is not None:
            ha1 = ha1_for(secret, username=username, realm=self.realm, algorithm=algorithm)
        if ha1 is None:
            # A decoy of the right length for users we do not know: the verification
            # that follows costs the same and fails the same way (no enumeration).
            digest = hashlib.sha256 if algorithm is Algorithm.SHA256 else hashlib.md5
            size = digest().digest_size
            ha1 = hmac.new(
                self._decoy_key, f"{algorithm}:{username}".encode(), hashlib.sha256
            ).hexdigest()[: size * 2]
            return ha1  # decoys are not cached: the table must not grow with guesses
        self._ha1_cache[key] = ha1
        return ha1
