"""Where identifiers come from: tags, branches, Call-IDs.

The pure core never draws randomness itself; it is handed an :class:`IdSource`.
The shell uses :class:`SecureIds` (the OS's CSPRNG); tests use :class:`SeededIds`
so that a run can be replayed exactly.
"""

from __future__ import annotations

import random
import secrets
from typing import Final, Protocol

#: Our branches start with the RFC 3261 magic cookie (section 8.1.1.7, "z9hG4bK") and a
#: marker of our own, so a request that comes back carrying one of our Vias is a loop.
BRANCH_PREFIX: Final = "z9hG4bK-b2b-"


class IdSource(Protocol):
    def new_tag(self) -> str: ...

    def new_branch(self) -> str: ...

    def new_call_id(self) -> str: ...


class SecureIds:
    """Unguessable identifiers (RFC 3261 section 19.3: tags and Call-IDs need randomness)."""

    def new_tag(self) -> str:
        return secrets.token_hex(8)

    def new_branch(self) -> str:
        return BRANCH_PREFIX + secrets.token_hex(10)

    def new_call_id(self) -> str:
        return secrets.token_hex(16)


class SeededIds:
    """Deterministic identifiers for tests and replays."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def _hex(self, nbytes: int) -> str:
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def new_tag(self) -> str:
        return self._hex(8)

    def new_branch(self) -> str:
        return BRANCH_PREFIX + self._hex(10)

    def new_call_id(self) -> str:
        return self._hex(16)
