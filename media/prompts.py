"""Voicemail prompts: greetings read from WAV files once and kept as encoded clips, and the
default greeting made at start.

:class:`PromptLibrary` gives the media host what to play for a
:class:`~media.commands.TakeMessage`: the greeting and the beep as
:class:`~media.player.Clip` objects already encoded in the call's payload type. A greeting
file is read once per path; G.711 encoding costs about 16 us per 20 ms frame in pure
Python (a 30 s greeting: 25 ms), so :meth:`PromptLibrary.load` reads and encodes, and the
host runs it in its executor the first time a (greeting, payload type) pair is asked for;
later calls find it in :meth:`PromptLibrary.cached` on the loop.

A greeting that cannot be read (missing, not 8 kHz mono 16-bit) is logged, and the default
greeting plays instead; without a default greeting file (or when it is broken too), the
two-tone :func:`chime`. Failures are not cached: a greeting fixed on disk plays next time.

:func:`default_greeting` makes the default greeting's file once, at start: speech from
``espeak-ng`` resampled by ``sox``; without them, the chime (and a warning that says how to
get speech). Both are I/O, so this module is not among the pure packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Final

import structlog

from media.player import Clip, beep, silence
from media.wav import WavError, read_wav, write_wav

__all__ = [
    "CHIME_FILE",
    "CONFIRM_FILE",
    "CONFIRM_TEXT",
    "GREETING_TEXT",
    "SPEECH_FILE",
    "PromptLibrary",
    "chime",
    "default_greeting",
]

log: Final = structlog.get_logger(__name__)

GREETING_TEXT: Final = (
    "The person you are calling is not available. Please leave a message after the tone. "
    "Press the hash key when you are done."
)
SPEECH_FILE: Final = "default-greeting.wav"
#: What a hunt member reached on a mobile hears when it must confirm (confirm-call).
CONFIRM_TEXT: Final = "You have a call for your team. Press 1 to take it."
CONFIRM_FILE: Final = "confirm-call.wav"
CHIME_FILE: Final = "default-chime.wav"
SYNTHESIS_TIMEOUT: Final = 30.0  # seconds for each of espeak-ng and sox
_SPEECH_WPM: Final = 150  # espeak-ng's default 175 words a minute is hurried on a phone
_INSTALL_HINT: Final = "apt-get install espeak-ng sox"


def chime() -> bytes:
    """A two-tone chime as 8 kHz 16-bit PCM (about 1.1 s, ending in a pause before the
    beep): the greeting when no spoken one is available. Pure: no file, no process."""
    return (
        silence(0.1)
        + beep(660.0, 0.3, amplitude=0.3)
        + silence(0.05)
        + beep(440.0, 0.45, amplitude=0.3)
        + silence(0.2)
    )


def default_greeting(
    directory: Path | str, *, text: str = GREETING_TEXT, name: str = SPEECH_FILE
) -> Path:
    """The default greeting's WAV file (8 kHz mono 16-bit) in ``directory``, made if missing.

    Spoken (``name``, by default :data:`SPEECH_FILE`, by ``espeak-ng`` into a temporary
    WAV, then ``sox`` to 8 kHz mono 16-bit, normalised to -3 dBFS) when both programs are
    installed; otherwise
    the :func:`chime` (:data:`CHIME_FILE`) and a warning saying how to get speech. The
    spoken file, once made, is kept and used; the chime is tried again for speech at the
    next start. Files appear whole (written aside, then renamed). Blocking (processes,
    disk): call it at start, or in an executor.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    speech = folder / name
    if speech.is_file():
        return speech
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if not missing:
        try:
            _synthesize(text, speech)
        except (OSError, subprocess.SubprocessError, WavError) as error:
            log.warning("default_greeting_synthesis_failed", error=str(error), path=str(speech))
        else:
            log.info("default_greeting_made", path=str(speech))
            return speech
    else:
        log.warning(
            "default_greeting_is_a_chime",
            missing=missing,
            hint=f"for a spoken greeting: {_INSTALL_HINT}",
        )
    chime_path = folder / CHIME_FILE
    if not chime_path.is_file():
        _write_atomically(chime_path, write_wav(chime()))
    return chime_path


def _synthesize(text: str, target: Path) -> None:
    """Speak ``text`` into ``target``: espeak-ng (22.05 kHz) then sox (8 kHz mono 16-bit)."""
    with tempfile.TemporaryDirectory(prefix="greeting-") as scratch:
        spoken = Path(scratch) / "spoken.wav"
        converted = Path(scratch) / "converted.wav"
        subprocess.run(
            ["espeak-ng", "-s", str(_SPEECH_WPM), "-w", str(spoken), text],
            check=True,
            capture_output=True,
            timeout=SYNTHESIS_TIMEOUT,
        )
        subprocess.run(
            ["sox", str(spoken), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
             str(converted), "norm", "-3"],
            check=True,
            capture_output=True,
            timeout=SYNTHESIS_TIMEOUT,
        )  # fmt: skip
        data = converted.read_bytes()
        read_wav(data)  # the format the library plays, or WavError
        _write_atomically(target, data)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` and rename over it: readers see no file or the whole file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class PromptLibrary:
    """Greeting and beep clips for the voicemail, by (greeting path, payload type).

    ``default_greeting`` is the WAV played when a :class:`~media.commands.TakeMessage`
    names no greeting (or one that cannot be read); ``None``: the :func:`chime`. ``beep``
    is the tone before the recording, as 8 kHz 16-bit PCM (default: 1 kHz for 0.5 s).

    :meth:`cached` is for the event loop; :meth:`load` blocks (file, encoding) and is
    safe from executor threads. :meth:`forget` drops the cache (greetings changed).
    """

    def __init__(
        self, default_greeting: Path | str | None = None, *, beep: bytes | None = None
    ) -> None:
        self._default = None if default_greeting is None else str(default_greeting)
        self._beep = Clip(_default_beep() if beep is None else beep)
        self._lock = threading.Lock()
        self._greetings: dict[str | None, Clip] = {}  # None: the default greeting
        self._ready: dict[tuple[str | None, int], tuple[Clip, Clip]] = {}

    @property
    def beep(self) -> Clip:
        return self._beep

    def cached(self, greeting: str | None, payload_type: int) -> tuple[Clip, Clip] | None:
        """``(greeting, beep)`` already encoded in ``payload_type``, or ``None`` if
        :meth:`load` has not made them yet. A dict lookup: fine on the event loop."""
        return self._ready.get((greeting, payload_type))

    def load(self, greeting: str | None, payload_type: int) -> tuple[Clip, Clip]:
        """``(greeting, beep)`` encoded in ``payload_type`` (0 PCMU, 8 PCMA; else
        ValueError), reading and encoding what is not cached yet. ``greeting`` is a WAV
        path, ``None`` for the default. Blocking."""
        key = (greeting, payload_type)
        with self._lock:
            ready = self._ready.get(key)
            if ready is not None:
                return ready
            clip = self._greeting(greeting)
            clip.codes(payload_type)
            self._beep.codes(payload_type)
            pair = (clip, self._beep)
            if greeting is None or self._greetings.get(greeting) is clip:
                self._ready[key] = pair  # a fallback is not cached: the file may be fixed
            return pair

    def forget(self) -> None:
        """Drop every cached clip: greetings are read again when next asked for."""
        with self._lock:
            self._greetings.clear()
            self._ready.clear()

    def _greeting(self, greeting: str | None) -> Clip:
        """The clip of ``greeting`` (read once), else of the default, else the chime.
        Called with the lock held."""
        if greeting is not None:
            clip = self._read(greeting, greeting)
            if clip is not None:
                return clip
        clip = self._greetings.get(None)
        if clip is None:
            clip = None if self._default is None else self._read(None, self._default)
            if clip is None:
                clip = self._greetings[None] = Clip(chime())
        return clip

    def _read(self, key: str | None, path: str) -> Clip | None:
        clip = self._greetings.get(key)
        if clip is not None:
            return clip
        try:
            audio = read_wav(Path(path).read_bytes())
        except (OSError, WavError) as error:
            log.warning("greeting_unreadable", path=path, error=str(error))
            return None
        clip = self._greetings[key] = Clip(audio.frames)
        return clip


def _default_beep() -> bytes:
    return beep()
