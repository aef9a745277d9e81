"""MediaHost's voicemail over real UDP sockets on 127.0.0.1: a "phone" socket hears the
greeting and the beep paced at 20 ms, then sends a tone as RTP, and the recording the
sink keeps holds that tone; every way a recording ends ('#' by RFC 4733, StopMessage,
CloseSession, the maximum length, silence, no RTP, host shutdown, a hang-up during the
greeting), record=False, a message too short, no sink, symmetric RTP, PCMA; and the
prompt library with its default greeting (espeak-ng and sox, or the chime).

Greetings here are 0.2 s and the beep 0.1 s (15 packets), to keep the suite quick. Tests
run on uvloop; the main path also on the stock loop."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop
from structlog.testing import capture_logs

from media import g711
from media.commands import (
    Address,
    CloseSession,
    MediaSessionId,
    MessageRecorded,
    MessageStop,
    OpenSession,
    RtpTimeout,
    SessionStats,
    StopMessage,
    TakeMessage,
)
from media.dtmf import build_event
from media.host import MediaHost
from media.player import PCMA, PCMU, beep
from media.prompts import CHIME_FILE, SPEECH_FILE, PromptLibrary, chime, default_greeting
from media.recordings import is_worth_keeping
from media.rtp import build_packet, parse_header
from media.wav import read_wav, write_wav
from tests.integration.test_media_host import (
    HOST,
    Endpoint,
    Reports,
    assert_free,
    endpoint,
    free_pairs,
)
from tests.support.audio import pcm_bytes, read_wav_samples, tone_power, tone_samples

SID = MediaSessionId("vm-1")
RATE = 8000
FRAME = 160
PTIME = 0.02
GREETING_HZ = 400
BEEP_HZ = 1000
TONE_HZ = 700
GREETING_FRAMES = 10  # 0.2 s
BEEP_FRAMES = 5  # 0.1 s
PROMPT_FRAMES = GREETING_FRAMES + BEEP_FRAMES
TELEPHONE_EVENT = 101
CALLER_SSRC = 0xCA11E4
WAIT = 3.0


def run(body: Callable[[], Awaitable[None]], loop: str = "uvloop") -> None:
    """Run ``body`` on a fresh loop; it must leave no task behind."""
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop

    async def checked() -> None:
        await body()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(checked())


class DirectorySink:
    """A RecordingSink writing under one directory: ``<session>.part`` while recording,
    ``<id>.wav`` once kept. Records its calls (from executor threads)."""

    def __init__(
        self, directory: Path, *, fail_begin: bool = False, begin_delay: float = 0.0
    ) -> None:
        self.directory = directory
        self.fail_begin = fail_begin
        self.begin_delay = begin_delay  # a slow disk
        self.begun: list[str] = []
        self.finished: list[tuple[str, float, MessageStop, str | None]] = []
        self._lock = threading.Lock()
        self._count = 0

    def begin(self, command: TakeMessage) -> str:
        if self.fail_begin:
            raise OSError("disk on fire")
        time.sleep(self.begin_delay)
        path = self.directory / f"{command.session_id}.part"
        with self._lock:
            self.begun.append(str(path))
        return str(path)

    def finish(
        self, command: TakeMessage, path: str, duration: float, reason: MessageStop
    ) -> str | None:
        message_id: str | None = None
        if is_worth_keeping(command, duration, reason):
            with self._lock:
                self._count += 1
                message_id = f"msg-{self._count}"
            Path(path).rename(self.directory / f"{message_id}.wav")
        else:
            Path(path).unlink()
        with self._lock:
            self.finished.append((path, duration, reason, message_id))
        return message_id

    def files(self) -> list[str]:
        return sorted(path.name for path in self.directory.iterdir())

    def samples(self, message_id: str) -> list[int]:
        rate, samples = read_wav_samples(self.directory / f"{message_id}.wav")
        assert rate == RATE
        return samples


def messages_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "messages"
    directory.mkdir(exist_ok=True)
    return directory


def greeting_file(directory: Path) -> Path:
    path = directory / "greeting.wav"
    path.write_bytes(write_wav(pcm_bytes(tone_samples(GREETING_HZ, 0.2, amplitude=0.3))))
    return path


def library(directory: Path) -> PromptLibrary:
    return PromptLibrary(greeting_file(directory), beep=beep(float(BEEP_HZ), 0.1))


def take_message(
    remote: Address | None,
    *,
    payload_type: int = PCMU,
    session_id: str = SID,
    **overrides: object,
) -> TakeMessage:
    fields: dict[str, object] = {
        "session_id": MediaSessionId(session_id),
        "remote": remote,
        "payload_type": payload_type,
        "event_payload_type": TELEPHONE_EVENT,
        "greeting": None,
        "mailbox": "alice",
        "caller": "+15550100",
        "caller_name": "Bob",
        "called": "201",
        "group": None,
        "received_at": 1_700_000_000.0,
        "max_length": 10.0,
        "min_length": 0.0,
        "silence_timeout": None,
        "no_rtp_timeout": 5.0,
    }
    fields.update(overrides)
    return TakeMessage(**fields)  # type: ignore[arg-type]


class Caller:
    """The caller's phone: one RTP socket; hears the prompts, talks, presses keys."""

    def __init__(self, rtp: Endpoint, host_port: int, payload_type: int) -> None:
        self.rtp = rtp
        self.host = (HOST, host_port)
        self.payload_type = payload_type
        self.sequence = 1000
        self.timestamp = 80_000

    @property
    def address(self) -> Address:
        return self.rtp.address

    def drain(self) -> int:
        """Forget what has been received; how many packets that was."""
        count = 0
        while not self.rtp.inbox.queue.empty():
            self.rtp.inbox.queue.get_nowait()
            count += 1
        return count

    async def hear(self, packets: int) -> list[tuple[float, bytes]]:
        """The next ``packets`` RTP packets from the host's port, with arrival times."""
        loop = asyncio.get_running_loop()
        heard: list[tuple[float, bytes]] = []
        while len(heard) < packets:
            data, source = await asyncio.wait_for(self.rtp.inbox.queue.get(), WAIT)
            assert source == self.host
            heard.append((loop.time(), data))
        return heard

    def _encode(self, samples: list[int]) -> bytes:
        pcm = pcm_bytes(samples)
        return g711.linear_to_ulaw(pcm) if self.payload_type == PCMU else g711.linear_to_alaw(pcm)

    async def say(self, samples: list[int]) -> None:
        """Send ``samples`` as 20 ms packets, paced on an absolute schedule."""
        loop = asyncio.get_running_loop()
        codes = self._encode(samples)
        start = loop.time()
        for index, offset in enumerate(range(0, len(codes), FRAME)):
            delay = start + index * PTIME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_audio(codes[offset : offset + FRAME])

    async def say_tone(self, seconds: float) -> None:
        await self.say(tone_samples(TONE_HZ, seconds, amplitude=0.3))

    async def say_nothing(self, seconds: float) -> None:
        await self.say([0] * round(seconds * RATE))

    def send_audio(self, payload: bytes) -> None:
        self.rtp.send(
            build_packet(
                payload_type=self.payload_type,
                sequence_number=self.sequence & 0xFFFF,
                timestamp=self.timestamp & 0xFFFF_FFFF,
                ssrc=CALLER_SSRC,
                payload=payload,
            ),
            self.host,
        )
        self.sequence += 1
        self.timestamp += len(payload)

    def press(self, digit: str) -> None:
        """An RFC 4733 key press at the current timestamp: a start and three end packets."""
        for index, end in enumerate((False, True, True, True)):
            self.rtp.send(
                build_packet(
                    payload_type=TELEPHONE_EVENT,
                    sequence_number=self.sequence & 0xFFFF,
                    timestamp=self.timestamp & 0xFFFF_FFFF,
                    ssrc=CALLER_SSRC,
                    payload=build_event(digit, end=end, duration=FRAME * (index + 1)),
                    marker=index == 0,
                ),
                self.host,
            )
            self.sequence += 1


@asynccontextmanager
async def voicemail(
    tmp_path: Path,
    *,
    payload_type: int = PCMU,
    sink: DirectorySink | None = None,
    with_sink: bool = True,
    append_interval: float = 1.0,
) -> AsyncIterator[tuple[MediaHost, Reports, Caller, DirectorySink | None, int, int]]:
    """A host with one open session whose side A expects the caller's phone."""
    port_a, port_b = free_pairs(2)
    loop = asyncio.get_running_loop()
    reports = Reports()
    if sink is None and with_sink:
        sink = DirectorySink(messages_dir(tmp_path))
    prompts = library(tmp_path)
    host = MediaHost(
        loop,
        reports,
        rtp_timeout=0.2,
        tick=0.05,
        recordings=sink,
        prompts=prompts,
        rng=random.Random(7),
        append_interval=append_interval,
    )
    phone = await endpoint(HOST, free_pairs(1)[0])
    caller = Caller(phone, port_a, payload_type)
    host.execute(
        OpenSession(
            session_id=SID,
            local_host=HOST,
            rtp_port_a=port_a,
            rtp_port_b=port_b,
            expected_a=phone.address,
            expected_b=None,
        )
    )
    try:
        yield host, reports, caller, sink, port_a, port_b
    finally:
        await host.close()
        phone.transport.close()
        await asyncio.sleep(0)


async def recorded(reports: Reports) -> MessageRecorded:
    (report,) = await reports.wait_for(MessageRecorded)
    assert isinstance(report, MessageRecorded)
    return report


def decode(payloads: list[bytes], payload_type: int) -> list[int]:
    codes = b"".join(payloads)
    pcm = g711.ulaw_to_linear(codes) if payload_type == PCMU else g711.alaw_to_linear(codes)
    return list(memoryview(pcm).cast("h"))


def assert_prompt_stream(heard: list[tuple[float, bytes]], payload_type: int) -> None:
    """One RTP stream from the host: consecutive sequence numbers, 160-sample timestamp
    steps, the marker on the first packet only, the greeting's tone then the beep's, paced
    at 20 ms (a loose bound: 15 packets over 0.28 s, so a burst or a doubled pace fails)."""
    headers = [parse_header(data) for _, data in heard]
    assert {header.payload_type for header in headers} == {payload_type}
    assert len({header.ssrc for header in headers}) == 1
    for previous, header in itertools.pairwise(headers):
        assert header.sequence_number == (previous.sequence_number + 1) & 0xFFFF
        assert header.timestamp == (previous.timestamp + FRAME) & 0xFFFF_FFFF
    assert [header.marker for header in headers] == [True] + [False] * (len(headers) - 1)
    payloads = [
        bytes(header.payload(data)) for header, (_, data) in zip(headers, heard, strict=True)
    ]
    assert {len(payload) for payload in payloads} == {FRAME}
    greeting = decode(payloads[:GREETING_FRAMES], payload_type)
    tone = decode(payloads[GREETING_FRAMES:], payload_type)
    assert tone_power(greeting, RATE, GREETING_HZ) > 0.8
    assert tone_power(tone, RATE, BEEP_HZ) > 0.8
    span = heard[-1][0] - heard[0][0]
    assert 0.2 <= span <= 0.5, f"{len(heard)} packets over {span:.3f} s"


@pytest.mark.parametrize(
    ("loop", "payload_type"), [("uvloop", PCMU), ("asyncio", PCMU), ("uvloop", PCMA)]
)
def test_greeting_and_beep_then_the_tone_is_recorded_until_hash(
    tmp_path: Path, loop: str, payload_type: int
) -> None:
    async def body() -> None:
        async with voicemail(tmp_path, payload_type=payload_type) as (
            host,
            reports,
            caller,
            sink,
            _,
            port_b,
        ):
            assert sink is not None
            host.execute(take_message(caller.address, payload_type=payload_type))
            assert (host.sessions, host.sockets_in_use) == (1, 2)
            assert_free(port_b)  # side B's sockets closed at once
            assert_prompt_stream(await caller.hear(PROMPT_FRAMES), payload_type)
            await caller.say_tone(0.4)
            caller.press("#")
            report = await recorded(reports)
            assert report.reason is MessageStop.DIGIT
            assert report.message_id == "msg-1"
            assert report.duration == pytest.approx(0.4, abs=0.001)
            samples = sink.samples("msg-1")
            assert len(samples) == round(0.4 * RATE)
            assert tone_power(samples, RATE, TONE_HZ) > 0.9
            assert sink.files() == ["msg-1.wav"]
            assert not [r for r in reports.items if isinstance(r, RtpTimeout)]
            assert host.sessions == 1  # until the switch closes it
            host.execute(CloseSession(session_id=SID))
            await reports.wait_for(SessionStats)
            assert sum(isinstance(r, MessageRecorded) for r in reports.items) == 1

    run(body, loop)


def test_audio_is_appended_as_it_comes_with_no_gap_even_when_the_file_comes_late(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        sink = DirectorySink(messages_dir(tmp_path), begin_delay=0.45)  # after the beep
        async with voicemail(tmp_path, sink=sink, append_interval=0.1) as (
            host,
            reports,
            caller,
            _,
            _,
            _,
        ):
            host.execute(take_message(caller.address))
            await caller.hear(PROMPT_FRAMES)
            said = tone_samples(TONE_HZ, 0.8, amplitude=0.3)
            speaking = asyncio.ensure_future(caller.say(said))
            await asyncio.sleep(0.6)
            part = sink.directory / f"{SID}.part"
            assert part.stat().st_size > 44 + 0.1 * RATE * 2  # appended while recording
            await speaking
            caller.press("#")
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.DIGIT, "msg-1")
            assert report.duration == pytest.approx(0.8, abs=0.001)
            codes = g711.linear_to_ulaw(pcm_bytes(said))
            assert sink.samples("msg-1") == decode([codes], PCMU)  # every sample, in order

    run(body)


@pytest.mark.parametrize("reason", [MessageStop.HANGUP, MessageStop.DIGIT])  # DIGIT: SIP INFO
def test_stop_message_keeps_what_was_said(tmp_path: Path, reason: MessageStop) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.4)
            await asyncio.sleep(0.05)  # the last packets arrive
            host.execute(StopMessage(session_id=SID, reason=reason))
            assert not [r for r in reports.items if isinstance(r, MessageRecorded)]
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (reason, "msg-1")
            assert report.duration == pytest.approx(0.4, abs=0.001)
            assert tone_power(sink.samples("msg-1"), RATE, TONE_HZ) > 0.9

    run(body)


@pytest.mark.parametrize("has_sink", [True, False])
def test_close_session_ends_the_recording_after_the_stats(tmp_path: Path, has_sink: bool) -> None:
    async def body() -> None:
        async with voicemail(tmp_path, with_sink=has_sink) as (
            host,
            reports,
            caller,
            _,
            port_a,
            port_b,
        ):
            host.execute(take_message(caller.address))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.3)
            await asyncio.sleep(0.05)
            host.execute(CloseSession(session_id=SID))
            assert (host.sessions, host.sockets_in_use) == (0, 0)
            assert_free(port_a)
            assert_free(port_b)
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (
                MessageStop.HANGUP,
                "msg-1" if has_sink else None,
            )
            assert report.duration == pytest.approx(0.3, abs=0.001)
            kinds = [
                type(r) for r in reports.items if isinstance(r, SessionStats | MessageRecorded)
            ]
            assert kinds == [SessionStats, MessageRecorded]

    run(body)


@pytest.mark.parametrize("hang_up", ["stop_message", "close_session"])
def test_hang_up_during_the_greeting_records_nothing(tmp_path: Path, hang_up: str) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address))
            await caller.hear(3)
            if hang_up == "stop_message":
                host.execute(StopMessage(session_id=SID, reason=MessageStop.HANGUP))
            else:
                host.execute(CloseSession(session_id=SID))
            report = await recorded(reports)
            assert report == MessageRecorded(
                session_id=SID,
                mailbox="alice",
                reason=MessageStop.NOT_RECORDED,
                duration=0.0,
                message_id=None,
            )
            assert [finished[2:] for finished in sink.finished] == [
                (MessageStop.NOT_RECORDED, None)
            ]
            assert sink.files() == []  # the file begin made is gone
            await asyncio.sleep(0.05)
            caller.drain()  # packets sent before the hang-up
            await caller.rtp.expect_silence(0.1)  # the greeting stopped

    run(body)


def test_maximum_length_cuts_the_message(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address, max_length=0.3))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.6)
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.MAX_LENGTH, "msg-1")
            assert report.duration == pytest.approx(0.3, abs=0.001)
            assert len(sink.samples("msg-1")) == round(0.3 * RATE)

    run(body)


def test_silence_ends_the_message_and_is_trimmed(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address, silence_timeout=0.3))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.3)
            await caller.say_nothing(0.6)
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.SILENCE, "msg-1")
            assert report.duration == pytest.approx(0.3, abs=0.001)
            assert tone_power(sink.samples("msg-1"), RATE, TONE_HZ) > 0.9

    run(body)


def test_no_rtp_ends_the_message_without_an_rtp_timeout(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, _, _, _):
            host.execute(take_message(caller.address, no_rtp_timeout=0.3))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.2)
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.NO_RTP, "msg-1")
            assert report.duration == pytest.approx(0.2, abs=0.001)
            # The host's rtp_timeout is 0.2 s: the session was silent longer, in voicemail.
            assert not [r for r in reports.items if isinstance(r, RtpTimeout)]

    run(body)


def test_full_mailbox_plays_greeting_and_beep_only(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address, record=False))
            assert_prompt_stream(await caller.hear(PROMPT_FRAMES), PCMU)
            report = await recorded(reports)
            assert (report.reason, report.duration, report.message_id) == (
                MessageStop.NOT_RECORDED,
                0.0,
                None,
            )
            await caller.say_tone(0.1)  # ignored: the switch hangs up
            assert (host.sessions, host.sockets_in_use) == (1, 2)
            host.execute(CloseSession(session_id=SID))
            await reports.wait_for(SessionStats)
            await asyncio.sleep(0.05)
            assert sum(isinstance(r, MessageRecorded) for r in reports.items) == 1
            assert (sink.begun, sink.finished) == ([], [])

    run(body)


def test_host_close_finishes_a_recording_in_progress(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.3)
            await asyncio.sleep(0.05)
            await host.close()
            (report,) = [r for r in reports.items if isinstance(r, MessageRecorded)]
            assert (report.reason, report.message_id) == (MessageStop.HANGUP, "msg-1")
            assert report.duration == pytest.approx(0.3, abs=0.001)
            assert tone_power(sink.samples("msg-1"), RATE, TONE_HZ) > 0.9
            assert host.recordings_finishing == 0

    run(body)


def test_host_close_waits_for_a_stuck_sink_only_so_long(tmp_path: Path) -> None:
    async def body() -> None:
        sink = DirectorySink(messages_dir(tmp_path), begin_delay=0.8)
        async with voicemail(tmp_path, sink=sink) as (host, reports, caller, _, _, _):
            host.execute(take_message(caller.address))
            await caller.hear(3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with capture_logs() as logs:
                await host.close(finish_timeout=0.2)
            assert 0.15 <= loop.time() - started < 0.6
            assert [e["event"] for e in logs if e["log_level"] == "error"] == [
                "voicemail_finish_timed_out"
            ]
            assert not [r for r in reports.items if isinstance(r, MessageRecorded)]

    with capture_logs() as logs:
        run(body)  # the loop's executor finishes begin: the file it made is closed, kept
    assert "voicemail_recording_abandoned" in [entry["event"] for entry in logs]
    assert (messages_dir(tmp_path) / f"{SID}.part").stat().st_size == 44


def test_a_message_shorter_than_the_minimum_is_not_kept(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            host.execute(take_message(caller.address, min_length=1.0))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.2)
            caller.press("#")
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.DIGIT, None)
            assert report.duration == pytest.approx(0.2, abs=0.001)
            assert sink.files() == []

    run(body)


@pytest.mark.parametrize("failing_sink", [False, True])
def test_without_a_file_the_caller_is_recorded_to_nowhere(
    tmp_path: Path, failing_sink: bool
) -> None:
    async def body() -> None:
        sink = DirectorySink(messages_dir(tmp_path), fail_begin=True) if failing_sink else None
        async with voicemail(tmp_path, sink=sink, with_sink=failing_sink) as (
            host,
            reports,
            caller,
            _,
            _,
            _,
        ):
            host.execute(take_message(caller.address))
            await caller.hear(PROMPT_FRAMES)
            await caller.say_tone(0.2)
            caller.press("#")
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.DIGIT, None)
            assert report.duration == pytest.approx(0.2, abs=0.001)

    with capture_logs() as logs:
        run(body)
    failures = [entry for entry in logs if entry["event"] == "voicemail_begin_failed"]
    assert len(failures) == failing_sink


def test_prompts_go_where_the_callers_rtp_comes_from(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, sink, _, _):
            assert sink is not None
            nowhere = (HOST, free_pairs(1)[0])  # what the SDP said; the phone is elsewhere
            host.execute(take_message(nowhere))
            await caller.rtp.expect_silence(0.06)  # the greeting goes to the SDP address
            caller.send_audio(b"\xff" * FRAME)  # silence, from the expected IP: latches
            heard = await caller.hear(5)  # the rest of the greeting comes here
            assert {parse_header(data).payload_type for _, data in heard} == {PCMU}
            await asyncio.sleep(0.3)  # the greeting and the beep end
            assert 5 + caller.drain() <= PROMPT_FRAMES
            await caller.say_tone(0.2)
            caller.press("#")
            report = await recorded(reports)
            assert (report.reason, report.message_id) == (MessageStop.DIGIT, "msg-1")
            assert report.duration == pytest.approx(0.2, abs=0.001)

    run(body)


def test_take_message_for_an_unknown_session_reports_not_recorded(tmp_path: Path) -> None:
    async def body() -> None:
        async with voicemail(tmp_path) as (host, reports, caller, _, _, _):
            host.execute(take_message(caller.address, session_id="gone"))
            report = await recorded(reports)
            assert (report.session_id, report.reason) == ("gone", MessageStop.NOT_RECORDED)

    run(body)


# The prompt library and the default greeting.


def test_library_reads_a_greeting_once_and_falls_back_to_the_default(tmp_path: Path) -> None:
    default = greeting_file(tmp_path)
    prompts = PromptLibrary(default, beep=beep(1000.0, 0.1))
    assert prompts.cached(None, PCMU) is None
    greeting, tone = prompts.load(None, PCMU)
    assert prompts.cached(None, PCMU) == (greeting, tone)
    assert greeting.duration == pytest.approx(0.2)
    assert len(greeting.codes(PCMU)) == 0.2 * RATE
    with capture_logs() as logs:
        fallback, _ = prompts.load(str(tmp_path / "missing.wav"), PCMA)
    assert fallback is greeting  # read once, now also encoded as PCMA
    assert prompts.cached(str(tmp_path / "missing.wav"), PCMA) is None  # not cached
    assert [entry["event"] for entry in logs] == ["greeting_unreadable"]
    without_default = PromptLibrary()
    assert without_default.load(None, PCMA)[0].pcm == chime()


def test_default_greeting_is_a_chime_without_espeak_ng(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with capture_logs() as logs:
        path = default_greeting(tmp_path / "data")
    assert path == tmp_path / "data" / CHIME_FILE
    assert read_wav(path.read_bytes()).frames == chime()
    (warning,) = [entry for entry in logs if entry["event"] == "default_greeting_is_a_chime"]
    assert "apt-get install espeak-ng" in warning["hint"]


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng or sox not installed (packaging/apt-packages.txt)",
)
def test_default_greeting_is_spoken_with_espeak_ng(tmp_path: Path) -> None:
    path = default_greeting(tmp_path)
    assert path == tmp_path / SPEECH_FILE
    audio = read_wav(path.read_bytes())
    assert 3.0 < audio.duration < 15.0
    assert max(abs(value) for value in memoryview(audio.frames).cast("h")) > 10_000
    made = path.stat().st_mtime_ns
    assert default_greeting(tmp_path) == path  # made once
    assert path.stat().st_mtime_ns == made
    assert [entry.name for entry in tmp_path.iterdir()] == [SPEECH_FILE]
