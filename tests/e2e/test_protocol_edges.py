"""Protocol corners checked with raw datagrams, where SIPp cannot express the check."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.rawsip import CRLF, recv_datagram, status_line
from tests.support.processes import Address, RunningSwitch

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT = 5.0


def request(method: str, via: Address, target: Address, branch: str, to_tag: str | None) -> bytes:
    to_tag_param = "" if to_tag is None else f";tag={to_tag}"
    lines = [
        f"{method} sip:probe@{target} SIP/2.0",
        f"Via: SIP/2.0/UDP {via};branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:e2e@{via}>;tag=edge-{branch[-6:]}",
        f"To: <sip:probe@{target}>{to_tag_param}",
        f"Call-ID: {branch}@e2e",
        f"CSeq: 1 {method}",
        "Content-Length: 0",
    ]
    return (CRLF.join(lines) + CRLF + CRLF).encode()


@pytest.mark.python_only
@pytest.mark.parametrize(
    "to_tag",
    [
        pytest.param("no-such-dialog", id="with-to-tag"),
        pytest.param(None, id="without-to-tag"),
    ],
)
def test_stray_ack_gets_no_response(switch: RunningSwitch, to_tag: str | None) -> None:
    # RFC 3261 never answers an ACK (section 17; section 8.2.7: "A stateless UAS MUST
    # ignore ACK requests"); one matching no transaction and no dialog is dropped.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
        local = Address(str(host), int(port))
        ack = request("ACK", local, switch.udp, "z9hG4bK-stray-ack", to_tag)
        sock.sendto(ack, switch.udp)
        # The OPTIONS goes out after the ACK on the same path: if the ACK were answered,
        # that answer would arrive first. Only the OPTIONS' 200 may come back.
        options = request("OPTIONS", local, switch.udp, "z9hG4bK-after-ack", None)
        sock.sendto(options, switch.udp)
        answer = recv_datagram(sock, ANSWER_TIMEOUT)
    assert b"z9hG4bK-after-ack" in answer, f"the ACK got an answer: {status_line(answer)}"
    assert status_line(answer) == "SIP/2.0 200 OK", answer
