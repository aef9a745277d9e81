"""Dialogs (RFC 3261 section 12) and the table that finds them. Pure: dialogs read
messages and build requests; the switch sends them."""

from b2bua.dialog.dialog import (
    DIALOG_CREATING_METHODS,
    TARGET_REFRESH_METHODS,
    Dialog,
    DialogCheck,
    DialogError,
    DialogId,
    DialogState,
)
from b2bua.dialog.routing import LocalAddress, make_dialog_response, request_target
from b2bua.dialog.stray import ack_and_bye_for_stray_2xx
from b2bua.dialog.table import DialogTable

__all__ = [
    "DIALOG_CREATING_METHODS",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogCheck",
    "DialogError",
    "DialogId",
    "DialogState",
    "DialogTable",
    "LocalAddress",
    "ack_and_bye_for_stray_2xx",
    "make_dialog_response",
    "request_target",
]
