"""What a reload (SIGHUP, ``b2bua reload``) may change without a restart.

The sections that only decide what *new* calls and registrations do are taken live:
``[extensions]`` (accounts, passwords, permissions, mailboxes: a removed extension's
bindings are dropped), ``[groups]`` (members, strategy, timers, destinations),
``[numbers]`` and ``[calls]``. Every other section is
bound into something running (sockets, the registrar's secrets, the media port range,
trunk registrations, the status server), so a file that changes one of them is refused
as a whole, naming those sections: nothing is half-applied, and the operator restarts
to take them. A file with errors is refused with every error (``load_config`` lists
them all). Either way the running configuration stays.
"""

from __future__ import annotations

from typing import Final

from b2bua.config import Config

#: The sections a reload applies to new calls.
LIVE_SECTIONS: Final = ("extensions", "groups", "numbers", "calls")


class ReloadRefusedError(Exception):
    """The new file cannot be taken live; ``errors`` says why, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def reload_changes(running: Config, new: Config) -> list[str]:
    """The live sections ``new`` changes (possibly none); :class:`ReloadRefusedError` when it
    changes a section that needs a restart."""
    needs_restart = [
        name
        for name in Config.model_fields
        if name not in LIVE_SECTIONS and getattr(running, name) != getattr(new, name)
    ]
    if needs_restart:
        live = ", ".join(f"[{name}]" for name in LIVE_SECTIONS)
        raise ReloadRefusedError(
            [
                f"[{name}] changed: it needs a restart (a reload applies {live} only)"
                for name in needs_restart
            ]
        )
    return [name for name in LIVE_SECTIONS if getattr(running, name) != getattr(new, name)]
