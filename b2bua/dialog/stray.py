"""A 2xx nobody wants: the ACK and BYE a UAC owes it (RFC 3261 section 13.2.2.4).

When an INVITE we sent forks, more than one fork may answer. The first 2xx confirms
its dialog and the others are dropped (:meth:`DialogTable.drop_early`), so a 2xx from
another fork finds no dialog. RFC 6026 section 7.2 has the INVITE client transaction
pass every such 2xx up while it is Accepted; the UAC must still ACK it, and then ends
the dialog it created with a BYE.
"""

from __future__ import annotations

from typing import Final

from b2bua.dialog.dialog import Dialog
from b2bua.dialog.routing import LocalAddress
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response

#: Credentials an ACK for a 2xx repeats from its INVITE (RFC 3261 section 13.2.2.4).
_CREDENTIALS: Final = ("authorization", "proxy-authorization")


def ack_and_bye_for_stray_2xx(
    invite_request: Request,
    response: Response,
    *,
    local_address: LocalAddress,
    ack_branch: str,
    bye_branch: str,
    ack_body: bytes = b"",
    ack_content_type: str | None = None,
    over_tls: bool = False,
) -> tuple[Request, Request]:
    """The ACK and the BYE for a 2xx to ``invite_request`` that we do not want.

    Both are built from the dialog the 2xx creates (section 12.1.2: Record-Route reversed,
    the 2xx's Contact as remote target): the ACK with the INVITE's CSeq number and its
    credentials, the BYE with the next number; each in a new branch. When the 2xx made an
    offer, ``ack_body`` must hold a valid answer (13.2.2.4), even though the BYE follows.
    """
    if not 200 <= response.status < 300 or invite_request.method != "INVITE":
        raise LocalProtocolError("only a 2xx to an INVITE is ACKed and BYEd")
    dialog = Dialog.from_uac(invite_request, response, over_tls=over_tls)
    credentials = [(f.name, f.value) for f in invite_request.headers if f.key in _CREDENTIALS]
    ack = dialog.ack_for_2xx(
        invite_request.cseq.number,
        branch=ack_branch,
        local_address=local_address,
        body=ack_body,
        content_type=ack_content_type,
        extra_headers=credentials,
    )
    bye = dialog.new_request("BYE", branch=bye_branch, local_address=local_address)
    return ack, bye
