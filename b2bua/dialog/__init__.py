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
from b2bua.dialog.invite_session import (
    UacInviteSession,
    UasInviteSession,
    build_cancel,
    reject_unsupported,
    sdp_of,
)
from b2bua.dialog.routing import LocalAddress, make_dialog_response, request_target
from b2bua.dialog.session_events import (
    EndReason,
    ReinviteAccepted,
    ReinviteRejected,
    SessionAction,
    SessionState,
    SessionStateError,
    SessionTimer,
)
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
    "EndReason",
    "LocalAddress",
    "ReinviteAccepted",
    "ReinviteRejected",
    "SessionAction",
    "SessionState",
    "SessionStateError",
    "SessionTimer",
    "UacInviteSession",
    "UasInviteSession",
    "ack_and_bye_for_stray_2xx",
    "build_cancel",
    "make_dialog_response",
    "reject_unsupported",
    "request_target",
    "sdp_of",
]
