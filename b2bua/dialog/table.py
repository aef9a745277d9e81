"""The dialogs the switch takes part in, found by their id (RFC 3261 section 12).

An INVITE we send may fork: each distinct To tag in its responses is a dialog of its own
(sections 12.1.2, 13.2.2.4), all sharing the Call-ID and our From tag. The table keeps
those *forks* together under (Call-ID, local tag), so that when one of them is
confirmed the owner can drop the early ones left (a B2BUA cancels the INVITE; a 2xx that
still arrives from a dropped fork then finds no dialog, and is ACKed and BYEd with
:func:`~b2bua.dialog.stray.ack_and_bye_for_stray_2xx`).
"""

from __future__ import annotations

from collections.abc import Iterator

from b2bua.dialog.dialog import Dialog, DialogId
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response

__all__ = ["DialogId", "DialogTable"]


class DialogTable:
    """Dialogs by :class:`DialogId`, and by (Call-ID, local tag) for the forks of one
    request. Tags and Call-IDs are compared exactly (case-sensitively)."""

    __slots__ = ("_dialogs", "_forks")

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        # (Call-ID, local tag) -> the dialogs sharing them, in the order they were added
        # (a dict used as an ordered set).
        self._forks: dict[tuple[str, str], dict[DialogId, Dialog]] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def add(self, dialog: Dialog) -> None:
        dialog_id = dialog.id
        if dialog_id in self._dialogs:
            raise LocalProtocolError(f"dialog {dialog_id} is already in the table")
        self._dialogs[dialog_id] = dialog
        self._forks.setdefault((dialog.call_id, dialog.local_tag), {})[dialog_id] = dialog

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def remove(self, dialog_id: DialogId) -> Dialog | None:
        """Forget a dialog; returns it, or None when it was not there."""
        dialog = self._dialogs.pop(dialog_id, None)
        if dialog is not None:
            key = (dialog_id.call_id, dialog_id.local_tag)
            forks = self._forks[key]
            del forks[dialog_id]
            if not forks:
                del self._forks[key]
        return dialog

    def for_request(self, request: Request) -> Dialog | None:
        """The dialog an incoming request belongs to: our tag is its To tag, the peer's its
        From tag (section 12.2.2). None for a request without a To tag, or for an unknown
        dialog (the owner answers 481 when it has a To tag)."""
        dialog_id = DialogId.of_request(request)
        return None if dialog_id is None else self._dialogs.get(dialog_id)

    def for_response(self, response: Response) -> Dialog | None:
        """The dialog a response to our request belongs to: our tag is its From tag, the
        peer's its To tag. None for a fork not seen yet, or one already dropped."""
        dialog_id = DialogId.of_response(response)
        return None if dialog_id is None else self._dialogs.get(dialog_id)

    def forks(self, call_id: str, local_tag: str) -> list[Dialog]:
        """Every dialog sharing this Call-ID and local tag (the forks of one INVITE we
        sent), in the order they were added."""
        return list(self._forks.get((call_id, local_tag), {}).values())

    def early_dialogs(self, call_id: str, local_tag: str) -> list[Dialog]:
        """The forks still early."""
        return [d for d in self.forks(call_id, local_tag) if d.is_early]

    def drop_early(
        self, call_id: str, local_tag: str, *, keep: DialogId | None = None
    ) -> list[Dialog]:
        """Terminate and forget the early forks of one INVITE, except ``keep``; returns
        them. Used when one fork is confirmed (section 13.2.2.4: the others end when the
        INVITE transaction does, and a 2xx from one of them is a stray 2xx)."""
        dropped = [d for d in self.early_dialogs(call_id, local_tag) if d.id != keep]
        for dialog in dropped:
            dialog.terminate()
            self.remove(dialog.id)
        return dropped
