"""MediaHost's confirm-call over real UDP sockets on 127.0.0.1: the callee on side B hears
the prompt and beep, paced at 20 ms and repeated; its RFC 4733 keys are reported once
per press; the caller's side hears nothing of it; StopConfirm gives side B back to the
relay, and CloseSession during a confirmation leaves no port or task behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from media.commands import (
    CloseSession,
    ConfirmAnswer,
    DigitPressed,
    MediaSessionId,
    StopConfirm,
)
from media.dtmf import build_event
from media.host import MediaHost
from media.player import beep
from media.prompts import PromptLibrary
from media.rtp import build_packet, parse_header
from media.wav import write_wav
from tests.integration.test_media_host import (
    HOST,
    SID,
    Reports,
    Run,
    assert_free,
    free_pairs,
    open_session,
    phones,
    rtp,
)

PCMU = 0
TELEPHONE_EVENT = 101
MOBILE_SSRC = 0x0B11E


def event_packet(seq: int, timestamp: int, digit: str, *, end: bool = False) -> bytes:
    return build_packet(
        payload_type=TELEPHONE_EVENT,
        sequence_number=seq,
        timestamp=timestamp,
        ssrc=MOBILE_SSRC,
        payload=build_event(digit, end=end, duration=160 * (seq % 5 + 1)),
    )


def confirm(remote: tuple[str, int], prompt: str | None = None) -> ConfirmAnswer:
    return ConfirmAnswer(
        session_id=MediaSessionId(SID),
        remote=remote,
        payload_type=PCMU,
        event_payload_type=TELEPHONE_EVENT,
        prompt=prompt,
    )


def prompt_file(tmp: Path) -> str:
    path = tmp / "confirm.wav"
    path.write_bytes(write_wav(beep(500.0, 0.1)))  # 5 packets, then the 25-packet beep
    return str(path)


def test_the_callee_hears_the_prompt_again_and_again_and_its_keys_are_reported(
    run: Run, tmp_path: Path
) -> None:
    prompt = prompt_file(tmp_path)

    async def body() -> None:
        port_a, port_b = free_pairs(2)
        reports = Reports()
        host = MediaHost(
            asyncio.get_running_loop(), reports, rtp_timeout=30.0, tick=0.05,
            prompts=PromptLibrary(beep=beep(1000.0, 0.1)),
        )  # fmt: skip
        try:
            async with phones(2) as (a, b):
                host.execute(open_session(port_a, port_b, a.address, b.address))
                host.execute(confirm(b.address, prompt))
                # The prompt (5 packets) and the beep (5), then a 1.5 s pause, then again.
                arrivals = []
                ssrcs = set()
                for _ in range(10):
                    data, source = await b.rtp.recv()
                    header = parse_header(data)
                    assert (source, header.payload_type) == ((HOST, port_b), PCMU)
                    arrivals.append(time.monotonic())
                    ssrcs.add(header.ssrc)
                    last = header
                assert len(ssrcs) == 1
                assert 0.12 <= arrivals[-1] - arrivals[0] <= 0.5  # paced at 20 ms
                # The pause (1.5 s of silence, still sent), then the second play: one
                # stream throughout, sequence numbers and timestamps running on.
                pause = [parse_header((await b.rtp.recv())[0]) for _ in range(75)]
                assert {h.ssrc for h in pause} == ssrcs
                assert [h.sequence_number for h in pause] == [
                    (last.sequence_number + 1 + i) & 0xFFFF for i in range(75)
                ]
                again = parse_header((await b.rtp.recv())[0])
                assert again.ssrc in ssrcs
                assert time.monotonic() - arrivals[-1] >= 1.3
                # The mobile presses 2, then 1 (each sent four times, the last three end).
                for seq, (timestamp, digit) in enumerate([(8000, "2"), (16000, "1")]):
                    for copy in range(4):
                        packet = event_packet(seq * 4 + copy, timestamp, digit, end=copy > 0)
                        b.rtp.send(packet, (HOST, port_b))
                pressed = await reports.wait_for(DigitPressed, 2)
                assert [r.digit for r in pressed if isinstance(r, DigitPressed)] == ["2", "1"]
                await a.rtp.expect_silence(0.1)  # the caller hears none of it
                host.execute(StopConfirm(session_id=MediaSessionId(SID)))
                await asyncio.sleep(0.1)
                while not b.rtp.inbox.queue.empty():
                    b.rtp.inbox.queue.get_nowait()
                await b.rtp.expect_silence(0.3)  # the prompt stopped
                # Side B relays again: the callee's audio reaches the caller.
                b.rtp.send(rtp(1, 0xB), (HOST, port_b))
                relayed, _ = await a.rtp.recv()
                assert parse_header(relayed).ssrc == 0xB
        finally:
            await host.close()
        assert_free(port_a)
        assert_free(port_b)

    run(body)


def test_close_session_during_a_confirmation_frees_the_ports(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        reports = Reports()
        host = MediaHost(asyncio.get_running_loop(), reports, rtp_timeout=30.0, tick=0.05)
        try:
            async with phones(2) as (a, b):
                host.execute(open_session(port_a, port_b, a.address, b.address))
                host.execute(confirm(b.address))  # no prompt file: the beep alone
                data, _ = await b.rtp.recv()
                assert parse_header(data).payload_type == PCMU
                host.execute(CloseSession(session_id=MediaSessionId(SID)))
                assert host.sessions == 0
        finally:
            await host.close()
        assert_free(port_a)
        assert_free(port_b)

    run(body)
