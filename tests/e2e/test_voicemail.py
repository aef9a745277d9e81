"""Voicemail through the real switch, with SIPp (and a few Python sockets) on 127.0.0.1.

A caller reaches voicemail the way the issue describes it: a hunt group's overflow to
``voicemail:<mailbox>``. The flower shop's scenario 2 runs on configs/flower-shop.toml
as tests/e2e/test_hunt_sipp.py loads it (lines 101 to 104 really on calls through the
switch, line 105 a SIPp phone that rings unanswered, ring time scaled down); every other
test uses a small config of its own (:func:`desk_config`): extension 101 with its
mailbox, and a group ``desk`` on the public number 5550500 whose only member (102) is
never registered, so each caller overflows to mailbox 101 at once.

What each test checks comes from sources that must agree: what the peers logged
(SIPp's -trace_msg: who sent BYE, which NOTIFYs came), the switch's call records
(``end_reason``), its JSON log, its HTTP API (``GET /voicemail/101``, the WAV, DELETE,
``/status``), the files under ``<data_dir>/voicemail`` and the SQLite rows beside them,
and the audio itself (the caller's tone found by frequency in the stored WAV).

Most mailboxes get a short greeting written by the test (0.3 s of silence), so that a
call spends 0.8 s on greeting and beep; the test of a caller who hangs up during the
greeting uses the default spoken one (about 7 s). Peers that send the caller's audio:

- SIPp plays ``caller_tone.wav`` (an 8 kHz mu-law WAV from its working directory):
  call_uac_public_basic.xml (the caller hangs up), vm_uac_public_until_bye.xml (the file
  once, then the switch must hang up), vm_uac_public_info_stop.xml (``#`` by SIP INFO),
  vm_uac_public_pcap_pound.xml (``#`` as SIPp's recorded RFC 4733 events, in a stream
  of their own);
- for ``#`` by RFC 4733 in the stream of the caller's audio, SIPp does the signalling
  only (vm_uac_public_silent_until_bye.xml) and :class:`RtpCaller` here sends the audio
  and the key from a socket of its own.

The mailbox owner's phone is a SIPp too: call_uas_register.xml with mwi_uas_notify.xml
(unsolicited NOTIFYs), and mwi_uac_subscribe.xml subscribes. The kill -9 test starts its
switches itself (``start_switch`` with one ``data_dir``) and stops each by PID. Helpers
for the flower shop come from tests/e2e/test_hunt_sipp.py, which loads it the same way.
"""

from __future__ import annotations

import contextlib
import email
import json
import math
import signal
import socket
import sqlite3
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from media import g711, rtp
from media.wav import read_wav, write_wav
from tests.e2e.test_hunt_sipp import (
    FLOWER_SHOP,
    SHOP_DID,
    member_state,
    phones,
    seed_config,
    shop_secret,
    talking,
    trace,
)
from tests.support.audio import (
    FRAME_SAMPLES,
    RATE,
    decode_pcmu,
    pcm_bytes,
    tone_power,
    tone_samples,
    write_tone_wav_ulaw,
)
from tests.support.phones import free_rtp_range
from tests.support.processes import (
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    free_port,
    log_events,
    start_switch,
    wait_until,
)
from tests.support.sipp_calls import (
    BackgroundCall,
    Callee,
    call,
    password,
    received,
    report,
    sipp_messages,
)

pytestmark = pytest.mark.e2e

DESK_DID: Final = "5550500"
MAILBOX: Final = "101"
TONE_WAV: Final = "caller_tone.wav"  # the fixed name the SIPp callers play
CALLER_HZ: Final = 700
AFTER_HZ: Final = 1300  # what a caller sends after '#': must not be in the message
#: A tone is "there" when this share of the audio's power lies at its frequency (as in
#: test_hunt_sipp.py), and "absent" below ABSENT.
TONE_SHARE: Final = 0.3
ABSENT: Final = 0.05
GREETING_SECONDS: Final = 0.3
BEEP_SECONDS: Final = 0.5
#: The greeting and the beep: the part of a caller's audio that is never recorded.
PROMPTS: Final = GREETING_SECONDS + BEEP_SECONDS
TELEPHONE_EVENT: Final = 101  # the payload type the SIPp callers offer for RFC 4733
SMTP_FROM: Final = "voicemail@shop.example"
MARY_EMAIL: Final = "mary@shop.example"


# -- configs and files


def write_greeting(path: Path, seconds: float = GREETING_SECONDS) -> Path:
    """A mailbox greeting: ``seconds`` of silence, 8 kHz mono 16-bit."""
    path.write_bytes(write_wav(bytes(2 * round(seconds * RATE))))
    return path


def desk_config(
    tmp_path: Path, *, greeting: bool = True, voicemail: str = "", mailbox: str = ""
) -> str:
    """Extension 101 (password ``secret-101``) with a mailbox (``greeting``: the test's
    short one, else the default spoken prompt; ``mailbox``: more TOML lines of its
    table), extension 102, and the group ``desk`` on the public number 5550500 whose only
    member, 102, is never registered: every caller goes to mailbox 101 at once.
    ``voicemail``: lines of the ``[voicemail]`` table."""
    low, high = free_rtp_range(size=100)
    own = [f'greeting = "{write_greeting(tmp_path / "greeting.wav")}"'] if greeting else []
    own += [line for line in mailbox.strip().splitlines() if line]
    return (
        "\n".join(
            [
                '[server]\nlisten = ["udp:127.0.0.1:0"]',
                f"[media]\nrtp_port_min = {low}\nrtp_port_max = {high}",
                f"[voicemail]\n{voicemail.strip()}",
                f'[extensions."101"]\npassword = "{password("101")}"',
                '[extensions."101".mailbox]',
                *own,
                f'[extensions."102"]\npassword = "{password("102")}"',
                f'[groups.desk]\npublic_numbers = ["{DESK_DID}"]\nmembers = ["102"]',
                "[groups.desk.destinations]",
                f'no_answer = "voicemail:{MAILBOX}"',
                f'all_busy = "voicemail:{MAILBOX}"',
                f'timeout = "voicemail:{MAILBOX}"',
            ]
        )
        + "\n"
    )


def write_ulaw_wav(path: Path, samples: Sequence[int]) -> Path:
    """An 8 kHz mono mu-law WAV of ``samples``, for SIPp's ``rtp_stream`` (which sends
    the file's bytes as they are: its 58-byte header falls in the greeting)."""
    codes = g711.linear_to_ulaw(pcm_bytes(samples))
    fmt = struct.pack("<HHIIHHH", 7, 1, RATE, RATE, 1, 8, 0)  # mu-law, as sox writes it
    body = b"WAVE" + chunk(b"fmt ", fmt) + chunk(b"fact", struct.pack("<I", len(codes)))
    path.write_bytes(chunk(b"RIFF", body + chunk(b"data", codes)))
    return path


def chunk(name: bytes, data: bytes) -> bytes:
    return name + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


# -- the switch's voicemail, from outside


def http(switch: RunningSwitch, method: str, path: str) -> tuple[int, bytes]:
    """One request to the switch's status server: (status, body)."""
    assert switch.status_address is not None
    address = switch.status_address
    request = urllib.request.Request(f"http://{address.host}:{address.port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def listing(switch: RunningSwitch, mailbox: str = MAILBOX) -> list[dict[str, Any]]:
    """GET /voicemail/<mailbox>: its messages, oldest first."""
    status, body = http(switch, "GET", f"/voicemail/{mailbox}")
    assert status == 200, (status, body)
    messages: list[dict[str, Any]] = json.loads(body)
    return messages


def wav_of(switch: RunningSwitch, message: dict[str, Any]) -> bytes:
    status, body = http(switch, "GET", str(message["url"]))
    assert status == 200, (status, body[:200])
    return body


def data_dir(switch: RunningSwitch) -> Path:
    return switch.workdir / "data"  # what the harness passes as --data-dir


def mailbox_dir(data: Path, mailbox: str = MAILBOX) -> Path:
    return data / "voicemail" / mailbox


def counts(switch: RunningSwitch, mailbox: str = MAILBOX) -> dict[str, int]:
    found: dict[str, int] = switch.status()["voicemail"]["messages"][mailbox]
    return found


def rows(data: Path) -> list[tuple[str, str]]:
    """(mailbox, id) of every row of the message store's SQLite file (read-only)."""
    uri = f"file:{data / 'voicemail' / 'messages.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        found = db.execute("SELECT mailbox, message_id FROM voicemail_messages").fetchall()
    return sorted((str(box), str(message_id)) for box, message_id in found)


def leftovers(data: Path) -> list[str]:
    """Recordings in progress (``.<id>.wav.part``) and their sidecars (``.<id>.json``)."""
    root = data / "voicemail"
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.is_file())


def settled(data: Path, *message_ids: str) -> None:
    """Wait until the store's SQLite file holds exactly a row for each of ``message_ids``
    (mailbox 101) and no recording or sidecar is left: the store answers from memory and
    its writer thread commits the rows (then deletes each sidecar) a moment later."""
    expected = sorted((MAILBOX, message_id) for message_id in message_ids)
    wait_until(
        lambda: rows(data) == expected and leftovers(data) == [],
        5,
        f"rows {expected} and no .part or sidecar left",
    )


def wait_messages(switch: RunningSwitch, count: int, mailbox: str = MAILBOX) -> list[Any]:
    wait_until(lambda: len(listing(switch, mailbox)) >= count, 10, f"{count} message(s)")
    found = listing(switch, mailbox)
    assert len(found) == count, found
    return found


def only_record(switch: RunningSwitch) -> dict[str, Any]:
    wait_until(lambda: len(switch.calls()) >= 1, 10, "the call record")
    [record] = switch.calls()
    return record


def only_records_to(switch: RunningSwitch, number: str) -> dict[str, Any]:
    """The one call record of a call to ``number`` (the shop's lines' calls aside)."""
    wait_until(
        lambda: any(r["callee"] == number for r in switch.calls()), 10, f"a record to {number}"
    )
    [record] = [r for r in switch.calls() if r["callee"] == number]
    return record


def samples_of(wav: bytes) -> list[int]:
    """The samples of a stored message (8 kHz mono 16-bit: media.wav.read_wav checks)."""
    audio = read_wav(wav)
    return list(struct.unpack(f"<{len(audio.frames) // 2}h", audio.frames))


def switch_byes(directory: Path, name: str) -> list[float]:
    """When a SIPp caller got a BYE (the switch hung up), by SIPp's clock."""
    return [m.at for m in received(directory / f"{name}-messages.log", "BYE")]


def answered_at(directory: Path, name: str) -> float:
    """When a SIPp caller got its 200 to the INVITE."""
    return next(
        m.at
        for m in sipp_messages(directory / f"{name}-messages.log")
        if not m.sent and m.status == 200 and m.cseq_method == "INVITE"
    )


def public_caller(
    switch: RunningSwitch, directory: Path, scenario: str, *extra: str, name: str
) -> None:
    """A caller from outside calls the desk's public number and must pass ``scenario``."""
    result = call(switch, scenario, directory, *extra, called=DESK_DID, caller=None, name=name)
    assert result.returncode == 0, report(directory, result)


def assert_message_audio(wav: bytes, *, present: float, absent: Sequence[float] = ()) -> None:
    samples = samples_of(wav)
    assert tone_power(samples, RATE, present) > TONE_SHARE, tone_power(samples, RATE, present)
    for frequency in absent:
        assert tone_power(samples, RATE, frequency) < ABSENT, frequency


# -- flower shop, scenario 2, ending in Mary's mailbox


def test_flower_shop_scenario_2_leaves_the_caller_s_tone_in_mary_s_mailbox(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Lines 101 to 104 are on calls through the switch, line 105 rings its ring time
    (scaled from 15 s to 2 s) unanswered: the switch answers the customer itself and the
    customer's tone ends up in the FIRST line's mailbox (101), the same bytes over HTTP
    and on disk, with the caller and the group in its metadata."""
    mary = '[extensions."101"]\nname = "Mary"\npassword = "change-me-101"\n'
    greeting = write_greeting(tmp_path / "mary-greeting.wav")
    switch = switch_factory(
        seed_config(
            FLOWER_SHOP,
            ("ring_time = 15\n", "ring_time = 2\n"),
            (mary, f'{mary}\n[extensions."101".mailbox]\ngreeting = "{greeting}"\n'),
        ),
        ("udp",),
    )
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {
        "101": "call_uas_answer.xml",  # answers Kate's call
        "102": "call_uas_answer.xml",  # answers Line 4's call
        "103": "call_uas_ring_forever.xml",  # registered, on a call as a caller
        "104": "call_uas_ring_forever.xml",
        "105": "call_uas_ring_forever.xml",  # rings, then CANCEL, 487
    }
    lines = list(behaviours)
    with phones(switch, tmp_path, behaviours, {n: shop_secret(n) for n in lines}) as shop:
        # The lines' calls end (4 s) before the customer's message is stored (2 s of
        # ringing plus 4 s of message): Mary's phone is gone when her lamp's NOTIFY comes.
        with (
            talking(switch, tmp_path, "103", "101", hold=4, secret=shop_secret("103")) as one,
            talking(switch, tmp_path, "104", "102", hold=4, secret=shop_secret("104")) as two,
        ):
            wait_until(
                lambda: all(member_state(switch, "shop", n) == "talking" for n in lines[:4]),
                5,
                "lines 101 to 104 talking",
            )
            result = call(
                switch, "call_uac_public_basic.xml", tmp_path, "-d", "4000",
                called=SHOP_DID, caller=None, name="customer",
            )  # fmt: skip
            assert result.returncode == 0, report(tmp_path, result)
            assert one.finish() == 0, report(tmp_path)
            assert two.finish() == 0, report(tmp_path)
        for number in ("101", "102", "105"):
            assert shop[number].finish() == 0, report(tmp_path)

    record = only_records_to(switch, SHOP_DID)
    assert (record["caller"], record["caller_status"]) == ("customer", 200)
    assert (record["disposition"], record["answered_by"]) == ("voicemail", "voicemail:101")
    assert record["end_reason"] == "caller BYE"
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["overflow"]) == ("overflowed", "no_answer")
    assert trace(record) == [
        ("101", "skipped", "talking"),
        ("102", "skipped", "talking"),
        ("103", "skipped", "talking"),
        ("104", "skipped", "talking"),
        ("105", "rung", None),
        ("105", "alerting", None),
        ("105", "cancelled", "ring time over"),
    ]
    [overflow] = log_events(switch, "hunt_overflow")
    assert overflow["destination"] == "voicemail:101"

    [message] = wait_messages(switch, 1)
    assert (message["caller_number"], message["caller_name"]) == ("customer", "Customer")
    assert (message["called_number"], message["hunt_group"]) == (SHOP_DID, "shop")
    assert message["is_read"] is False
    assert 4.0 - PROMPTS - 0.6 < message["duration"] < 4.0 - PROMPTS + 0.3, message
    served = wav_of(switch, message)
    on_disk = (mailbox_dir(data_dir(switch)) / f"{message['message_id']}.wav").read_bytes()
    assert served == on_disk
    assert message["size"] == len(on_disk)
    audio = read_wav(on_disk)
    assert abs(audio.duration - message["duration"]) < 0.05
    assert_message_audio(on_disk, present=CALLER_HZ)
    assert counts(switch) == {"new": 1, "old": 0}
    for number in ("102", "103", "104", "105"):
        assert listing(switch, number) == []
        assert counts(switch, number) == {"new": 0, "old": 0}
    settled(data_dir(switch), message["message_id"])
    assert_nothing_left(switch)


# -- e-mail


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every mail it gets."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd calls its hooks by these names)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def mails(self) -> list[EmailMessage]:
        out = []
        for envelope in self.envelopes:
            assert isinstance(envelope.original_content, bytes)
            mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            out.append(mail)
        return out


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd, its own thread) on 127.0.0.1 at a free port."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def test_the_message_is_mailed_with_the_stored_wav_attached(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """With ``[voicemail.smtp]`` and the mailbox's ``email``, the message reaches a real
    SMTP server: to Mary, from the configured sender, subject and body naming the caller,
    the WAV attached byte for byte as stored."""
    with smtp_server() as (inbox, port):
        voicemail = f"""
[voicemail.smtp]
host = "127.0.0.1"
port = {port}
from = "{SMTP_FROM}"
attempts = 2
retry_interval = 1
"""
        config = desk_config(tmp_path, voicemail=voicemail, mailbox=f'email = "{MARY_EMAIL}"')
        switch = switch_factory(config, ("udp",))
        write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
        public_caller(switch, tmp_path, "call_uac_public_basic.xml", "-d", "2500", name="caller")
        [message] = wait_messages(switch, 1)
        wait_until(lambda: inbox.envelopes, 10, "the e-mail")
        [envelope] = inbox.envelopes
        [mail] = inbox.mails()

    assert (envelope.mail_from, envelope.rcpt_tos) == (SMTP_FROM, [MARY_EMAIL])
    assert (mail["From"], mail["To"]) == (SMTP_FROM, MARY_EMAIL)
    subject = str(mail["Subject"])
    assert subject == f"Voicemail from customer (Customer) for mailbox {MAILBOX}", subject
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "customer (Customer)" in text, text
    assert DESK_DID in text
    assert message["message_id"] in text
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_filename() == f"{message['message_id']}.wav"
    attached = attachment.get_content()
    stored = (mailbox_dir(data_dir(switch)) / f"{message['message_id']}.wav").read_bytes()
    assert attached == stored == wav_of(switch, message)
    assert_message_audio(attached, present=CALLER_HZ)
    [sent] = log_events(switch, "voicemail_mail_sent")
    assert (sent["mailbox"], sent["message_id"], sent["attempt"]) == (
        MAILBOX,
        message["message_id"],
        1,
    )
    assert_nothing_left(switch)


# -- the message-waiting lamp


def lamps(messages_log: Path) -> list[str]:
    """What each NOTIFY a SIPp got said: ``yes``, ``no`` or ``terminated`` (a final
    NOTIFY), in order, retransmissions left out."""
    seen: set[tuple[str, str]] = set()
    out = []
    for message in received(messages_log, "NOTIFY"):
        key = (header(message.text, "Call-ID"), header(message.text, "CSeq"))
        if key in seen:
            continue
        seen.add(key)
        if "terminated" in header(message.text, "Subscription-State"):
            out.append("terminated")
            continue
        waiting = [
            line.split(":", 1)[1].strip()
            for line in message.text.splitlines()
            if line.lower().startswith("messages-waiting:")
        ]
        assert len(waiting) == 1, message.text
        out.append(waiting[0])
    return out


def said(messages_log: Path, text: str) -> bool:
    """Whether a SIPp's -trace_msg file holds ``text`` yet (read while SIPp writes it)."""
    return messages_log.exists() and text in messages_log.read_text(errors="replace")


def header(text: str, name: str) -> str:
    for line in text.splitlines():
        found, colon, value = line.partition(":")
        if colon and found.strip().lower() == name.lower():
            return value.strip()
    return ""


def test_the_lamp_lights_for_a_message_and_goes_out_when_it_is_deleted(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Mary's phone (registered 101, never subscribed) gets an unsolicited NOTIFY with
    ``Messages-Waiting: yes`` when a message arrives and ``no`` after
    ``DELETE /voicemail/101/<id>``; at the same time a SUBSCRIBE (digest) to mailbox 101
    gets no, yes, no in its dialog, then unsubscribes."""
    switch = switch_factory(desk_config(tmp_path), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    phone = Callee.start(switch, MAILBOX, "mwi_uas_notify.xml", tmp_path)
    try:
        with BackgroundCall.start(
            switch, "mwi_uac_subscribe.xml", tmp_path, called=MAILBOX, caller=MAILBOX,
            name="subscriber",
        ) as subscriber:  # fmt: skip

            def lamp(summary: str) -> bool:
                watching = switch.status()["voicemail"]["subscriptions"].get(MAILBOX, [])
                return [w["notified"] for w in watching] == [summary]

            wait_until(lambda: lamp("0/0"), 10, "the subscription's first NOTIFY")
            assert lamps(phone.messages_log) == []  # an empty mailbox is no news

            public_caller(
                switch, tmp_path, "call_uac_public_basic.xml", "-d", "2500", name="caller"
            )
            [message] = wait_messages(switch, 1)
            assert counts(switch) == {"new": 1, "old": 0}
            wait_until(lambda: said(phone.messages_log, "Messages-Waiting: yes"), 10, "lamp on")
            wait_until(lambda: lamp("1/0"), 10, "the subscriber's lamp on")

            status, _ = http(switch, "DELETE", f"/voicemail/{MAILBOX}/{message['message_id']}")
            assert status == 204
            assert phone.finish() == 0, report(tmp_path)  # ends on the lamp-off NOTIFY
            assert subscriber.finish() == 0, report(tmp_path)
    finally:
        phone.stop()

    assert lamps(phone.messages_log) == ["yes", "no"]
    notifies = received(phone.messages_log, "NOTIFY")
    assert len({header(n.text, "Call-ID") for n in notifies}) == 2  # out of dialog, each new
    for notify in notifies:
        assert header(notify.text, "Event") == "message-summary"
        assert "Voice-Message:" in notify.text
    answered = [m for m in sipp_messages(phone.messages_log) if m.sent and m.status == 200]
    assert len(answered) >= 2
    assert lamps(tmp_path / "subscriber-messages.log") == ["no", "yes", "no", "terminated"]
    assert switch.status()["voicemail"]["subscriptions"].get(MAILBOX, []) == []
    assert counts(switch) == {"new": 0, "old": 0}
    assert listing(switch) == []
    assert list(mailbox_dir(data_dir(switch)).iterdir()) == []
    settled(data_dir(switch))
    status, _ = http(switch, "GET", str(message["url"]))
    assert status == 404
    assert_nothing_left(switch)


# -- '#' ends the recording


class RtpCaller:
    """The media half of a caller (vm_uac_public_silent_until_bye.xml does the SIP):
    PCMU tones and RFC 4733 events from one UDP socket, one SSRC, paced at 20 ms, while
    it takes in what the switch plays (the greeting and the beep come to this socket
    once the switch has latched to it)."""

    def __init__(self, switch_rtp: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.target = switch_rtp
        self.sequence = 1000
        self.timestamp = 160_000
        self.ssrc = 0x5EED_0101
        self.next_send = time.monotonic()
        self.heard: list[tuple[float, bytes]] = []  # (arrival, PCMU payload)
        self._phase = 0.0

    def close(self) -> None:
        self.sock.close()

    def _send(self, payload_type: int, payload: bytes, *, marker: bool = False) -> None:
        self._pace()
        packet = rtp.build_packet(
            payload_type=payload_type,
            sequence_number=self.sequence & 0xFFFF,
            timestamp=self.timestamp & 0xFFFF_FFFF,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.sock.sendto(packet, self.target)
        self.sequence += 1

    def _pace(self) -> None:
        """Wait for the next 20 ms slot, taking in what arrives meanwhile."""
        while True:
            left = self.next_send - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                break
            with contextlib.suppress(rtp.RtpError):
                header = rtp.parse_header(data)
                if header.payload_type == 0:
                    self.heard.append((time.monotonic(), bytes(header.payload(data))))
        self.next_send = max(self.next_send + 0.02, time.monotonic() - 0.04)

    def tone(self, frequency: float, seconds: float) -> None:
        """``seconds`` of a sine, continuous in phase across calls."""
        step = 2 * math.pi * frequency / RATE
        for _ in range(round(seconds / 0.02)):
            samples = [
                round(16000 * math.sin(self._phase + step * index))
                for index in range(FRAME_SAMPLES)
            ]
            self._phase = (self._phase + step * FRAME_SAMPLES) % (2 * math.pi)
            self._send(0, g711.linear_to_ulaw(pcm_bytes(samples)))
            self.timestamp += FRAME_SAMPLES

    def until_prompts_end(self, quiet: float = 0.2, limit: float = 5.0) -> float:
        """Send ``CALLER_HZ`` until the switch's greeting and beep have come and stopped
        for ``quiet`` s (the recording runs from then); the prompts' last arrival."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.tone(CALLER_HZ, 0.02)
            if self.heard and time.monotonic() - self.heard[-1][0] >= quiet:
                return self.heard[-1][0]
        pytest.fail(f"the greeting and beep did not come and end within {limit} s")

    def press(self, digit_event: int, packets: int = 5) -> None:
        """One key press as RFC 4733 events: ``packets`` updates 20 ms apart (the first
        with the marker bit), then the end packet three times; one timestamp for all,
        the audio's timeline moving on by the event's duration."""
        for index in range(1, packets + 1):
            payload = struct.pack("!BBH", digit_event, 10, index * FRAME_SAMPLES)
            self._send(TELEPHONE_EVENT, payload, marker=index == 1)
        end = struct.pack("!BBH", digit_event, 0x80 | 10, packets * FRAME_SAMPLES)
        for _ in range(3):  # each a packet of its own: the sequence number moves on
            self._send(TELEPHONE_EVENT, end)
        self.timestamp += packets * FRAME_SAMPLES


POUND: Final = 11  # RFC 4733 section 3.2: the event code of '#'


def voicemail_rtp_port(switch: RunningSwitch) -> int:
    """The switch's RTP port of the one call voicemail answered (side A)."""
    found: list[int] = []

    def answered() -> bool:
        calls = switch.status()["calls"]["list"]
        found[:] = [
            c["media_ports"][0] for c in calls if c["answered_by"] == f"voicemail:{MAILBOX}"
        ]
        return bool(found)

    wait_until(answered, 10, "voicemail answering the caller")
    return found[0]


#: How a SIPp caller sends '#' after 2.5 s of tone: its scenario.
SIPP_POUND: Final = {
    "info": "vm_uac_public_info_stop.xml",
    "rfc4733-sipp-pcap": "vm_uac_public_pcap_pound.xml",
}


@pytest.mark.parametrize("by", ["rfc4733", "rfc4733-sipp-pcap", "info"])
def test_pound_ends_the_recording_and_the_switch_hangs_up(
    switch_factory: SwitchFactory, tmp_path: Path, by: str
) -> None:
    """``#`` ends the message, sent as RFC 4733 events in the caller's RTP (``rfc4733``:
    in the stream of its audio, from :class:`RtpCaller`; ``rfc4733-sipp-pcap``: SIPp's
    own recording of a key press, a stream of its own beside SIPp's tone) or as SIP INFO
    (application/dtmf-relay): what the caller said before it is the message, what it
    sends after it is not, and the switch sends the BYE; the record's end_reason is
    ``voicemail: digit``."""
    switch = switch_factory(desk_config(tmp_path), ("udp",))
    if by in SIPP_POUND:
        write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
        public_caller(switch, tmp_path, SIPP_POUND[by], "-d", "2500", name="caller")
        expected = 2.5 - PROMPTS
    else:
        with BackgroundCall.start(
            switch, "vm_uac_public_silent_until_bye.xml", tmp_path,
            called=DESK_DID, caller=None, name="caller",
        ) as sipp:  # fmt: skip
            media = RtpCaller(("127.0.0.1", voicemail_rtp_port(switch)))
            try:
                beep_ended = media.until_prompts_end()  # its first packet latched the switch
                media.tone(CALLER_HZ, 1.5)
                expected = time.monotonic() - beep_ended  # the recording so far
                media.press(POUND)
                media.tone(AFTER_HZ, 1.0)  # after the key: not in the message
            finally:
                media.close()
            assert sipp.finish() == 0, report(tmp_path)
        prompts = decode_pcmu([payload for _, payload in media.heard])
        assert len(prompts) >= 0.3 * RATE, "the beep did not reach the latched socket"
        assert tone_power(prompts, RATE, CALLER_HZ) < ABSENT  # the switch echoes nothing

    record = only_record(switch)
    assert record["end_reason"] == "voicemail: digit", record
    assert record["disposition"] == "voicemail"
    [bye] = switch_byes(tmp_path, "caller")  # the switch hung up on the caller
    caller_sent = sipp_messages(tmp_path / "caller-messages.log")
    assert not [m for m in caller_sent if m.sent and m.method == "BYE"]
    [stopped] = log_events(switch, "voicemail_recording_stopped")
    assert stopped["reason"] == "digit"
    if by == "info":
        [key] = log_events(switch, "voicemail_stop_key")
        assert (key["digit"], key["by"]) == ("#", "INFO")
    [message] = wait_messages(switch, 1)
    assert abs(message["duration"] - expected) < 0.25, (message["duration"], expected)
    assert bye - answered_at(tmp_path, "caller") < expected + PROMPTS + 1.5
    assert_message_audio(wav_of(switch, message), present=CALLER_HZ, absent=[AFTER_HZ])
    settled(data_dir(switch), message["message_id"])
    assert_nothing_left(switch)


# -- a caller who leaves during the greeting (or too soon after the beep)


@pytest.mark.parametrize(
    ("greeting", "seconds", "reason"),
    [
        pytest.param(False, 1.0, "not recorded", id="during the greeting"),
        pytest.param(True, PROMPTS + 0.4, "hangup", id="shorter than min_message_length"),
    ],
)
def test_a_caller_who_hangs_up_too_soon_leaves_nothing(
    switch_factory: SwitchFactory, tmp_path: Path, greeting: bool, seconds: float, reason: str
) -> None:
    """A caller hanging up 1 s into the default spoken greeting (about 7 s), or 0.4 s
    after the beep (under the default min_message_length of 1 s), leaves no message: no
    file, no ``.part``, no sidecar, no row, counts 0 (the lamp stays off)."""
    switch = switch_factory(desk_config(tmp_path, greeting=greeting), ("udp",))
    if not greeting:
        prompt = data_dir(switch) / "prompts" / "default-greeting.wav"
        assert read_wav(prompt.read_bytes()).duration > 5.0  # made at start, spoken
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    hold = str(round(seconds * 1000))
    public_caller(switch, tmp_path, "call_uac_public_basic.xml", "-d", hold, name="caller")

    record = only_record(switch)
    assert (record["disposition"], record["end_reason"]) == ("voicemail", "caller BYE")
    wait_until(lambda: log_events(switch, "voicemail_recorded"), 10, "the recording's end")
    [recorded] = log_events(switch, "voicemail_recorded")
    assert (recorded["reason"], recorded["message_id"]) == (reason, None)
    [discarded] = log_events(switch, "voicemail_recording_discarded")
    assert discarded["mailbox"] == MAILBOX
    assert log_events(switch, "voicemail_message_stored") == []
    assert listing(switch) == []
    assert counts(switch) == {"new": 0, "old": 0}
    box = mailbox_dir(data_dir(switch))
    assert not box.exists() or list(box.iterdir()) == []
    settled(data_dir(switch))
    assert_nothing_left(switch)


# -- maximum length and silence


@dataclass(frozen=True)
class Limit:
    voicemail: str  # lines of [voicemail]
    tone: float  # seconds of the caller's tone, after the greeting and the beep
    silence: float  # seconds of silence after it (then the caller's audio ends)
    reason: str  # the recording's end
    duration: tuple[float, float]  # bounds of the message's length
    hang_up: tuple[float, float]  # bounds of the switch's BYE, from the answer


LIMITS: Final = {
    "max length": Limit(
        "max_message_length = 2", tone=6.0, silence=0.0, reason="max length",
        duration=(1.98, 2.02), hang_up=(PROMPTS + 1.8, PROMPTS + 3.0),
    ),
    "silence": Limit(
        "silence_timeout = 2", tone=1.5, silence=6.0, reason="silence",
        duration=(1.0, 2.2), hang_up=(PROMPTS + 3.0, PROMPTS + 4.6),
    ),
}  # fmt: skip


@pytest.mark.parametrize("limit", LIMITS.values(), ids=list(LIMITS))
def test_a_limit_ends_the_recording_and_the_switch_hangs_up(
    switch_factory: SwitchFactory, tmp_path: Path, limit: Limit
) -> None:
    """``max_message_length = 2`` with a caller that talks on: the message is 2 s; or
    ``silence_timeout = 2`` with a caller that goes silent after its tone: the message
    ends when 2 s of silence have passed, the silence trimmed off. Either way the switch
    BYEs the caller (who never hangs up: vm_uac_public_until_bye.xml)."""
    switch = switch_factory(desk_config(tmp_path, voicemail=limit.voicemail), ("udp",))
    audio = tone_samples(CALLER_HZ, PROMPTS + limit.tone) + [0] * round(limit.silence * RATE)
    write_ulaw_wav(tmp_path / TONE_WAV, audio)
    public_caller(switch, tmp_path, "vm_uac_public_until_bye.xml", name="caller")

    record = only_record(switch)
    assert record["end_reason"] == f"voicemail: {limit.reason}", record
    [bye] = switch_byes(tmp_path, "caller")
    low, high = limit.hang_up
    assert low < bye - answered_at(tmp_path, "caller") < high
    [stopped] = log_events(switch, "voicemail_recording_stopped")
    assert stopped["reason"] == limit.reason
    [message] = wait_messages(switch, 1)
    low, high = limit.duration
    assert low <= message["duration"] <= high, message
    wav = wav_of(switch, message)
    assert abs(read_wav(wav).duration - message["duration"]) < 0.01
    assert_message_audio(wav, present=CALLER_HZ)
    if limit.silence:  # trimmed: the message ends in the tone, not in 2 s of silence
        tail = samples_of(wav)[-RATE // 2 :]
        assert tone_power(tail, RATE, CALLER_HZ) > TONE_SHARE
    settled(data_dir(switch), message["message_id"])
    assert_nothing_left(switch)


# -- kill -9 during a recording


@contextlib.contextmanager
def switches() -> Iterator[list[RunningSwitch]]:
    """Switches a test starts itself (start_switch), each stopped by PID at the end."""
    started: list[RunningSwitch] = []
    try:
        yield started
    finally:
        for running in started:
            running.stop()


def test_kill_9_during_a_recording_loses_no_message_and_leaves_no_debris(
    tmp_path: Path,
) -> None:
    """Two messages are stored; during a third recording the switch gets SIGKILL. Started
    again on the same data_dir, it has the two messages byte for byte, the interrupted
    one as a valid WAV message with the caller's tone (or not at all), no ``.part`` or
    sidecar left, every file a message and every message a file."""
    data = tmp_path / "data"
    config = desk_config(tmp_path)
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    with switches() as started:
        first = start_switch(tmp_path, config, ("udp",), data_dir=data)
        started.append(first)
        result = call(
            first, "call_uac_public_basic.xml", tmp_path, "-d", "2500",
            called=DESK_DID, caller=None, name="earlier", calls=2,
        )  # fmt: skip
        assert result.returncode == 0, report(tmp_path, result)
        earlier = wait_messages(first, 2)
        kept = {
            m["message_id"]: (mailbox_dir(data) / f"{m['message_id']}.wav").read_bytes()
            for m in earlier
        }
        assert all(wav_of(first, m) == kept[m["message_id"]] for m in earlier)

        with BackgroundCall.start(
            first, "call_uac_public_basic.xml", tmp_path, "-d", "20000",
            called=DESK_DID, caller=None, name="interrupted",
        ) as interrupted:  # fmt: skip
            second_of_audio = 44 + 2 * RATE

            def recording() -> bool:
                parts = list(mailbox_dir(data).glob(".*.wav.part"))
                return bool(parts) and parts[0].stat().st_size > second_of_audio

            wait_until(recording, 10, "a second of the third message on disk")
            assert first.stop(signum=signal.SIGKILL) == -signal.SIGKILL
            crashed = leftovers(data)
            assert len(crashed) == 2, crashed  # the .part and its sidecar
            interrupted.stop()  # its BYE would go nowhere

        second = start_switch(tmp_path, config, ("udp",), data_dir=data)
        started.append(second)
        now = listing(second)
        ids = [m["message_id"] for m in now]
        assert ids[:2] == sorted(kept), ids
        for message in now[:2]:
            on_disk = (mailbox_dir(data) / f"{message['message_id']}.wav").read_bytes()
            assert on_disk == kept[message["message_id"]]
            assert wav_of(second, message) == on_disk
        assert len(now) in (2, 3), now
        [recovery] = log_events(second, "voicemail_store_recovered")
        if len(now) == 3:
            message = now[2]
            assert recovery["recovered"] == 1, recovery
            assert (message["caller_number"], message["called_number"]) == ("customer", DESK_DID)
            wav = wav_of(second, message)
            assert 0.9 < read_wav(wav).duration < 20
            assert abs(read_wav(wav).duration - message["duration"]) < 0.01
            assert_message_audio(wav, present=CALLER_HZ)
        else:
            assert recovery["discarded"] == 1, recovery
        settled(data, *ids)
        files = sorted(p.name for p in mailbox_dir(data).iterdir())
        assert files == sorted(f"{i}.wav" for i in ids)
        for name in files:
            read_wav((mailbox_dir(data) / name).read_bytes())  # WavError if damaged
        assert counts(second) == {"new": len(ids), "old": 0}
        assert_nothing_left(second)
