"""libespeak-ng through ctypes, and a small server process that makes its output reproducible.

The bindings follow espeak-ng's ``speak_lib.h`` (API revision 12). The library is initialised in
synchronous mode with phoneme events enabled: the synthesis callback receives the audio in chunks
together with ``espeakEVENT_WORD`` and ``espeakEVENT_PHONEME`` events carrying sample positions.
The library bundled by the PyPI package ``espeakng-loader`` (with its data) is preferred; Debian's
``libespeak-ng.so.1`` is the fallback.

Why a server: espeak-ng keeps state from one utterance to the next (the phase of its wave
generator's pitch flutter is a static variable that nothing resets), so the same text with the same
voice comes out a few samples longer or shorter depending on what was said before; and the noise of
breathy variants comes from a generator the library seeds from the clock (seeded here with 0). The server is a
lean process (no numpy) whose library is initialised but never used: for each request it forks a
child that sets the voice and speaks from that pristine state, sends the result and exits. (Setting
voices in the server itself is no good either: after a few voice changes the next utterance loses
its first events.) Forking the lean server costs about a millisecond. The server ends when its client
closes the pipe (or dies).

This file runs as the server script (``python espeak.py``), so it imports nothing from ``mome``.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import struct
import subprocess
import sys
from dataclasses import astuple, dataclass

from mome.errors import MomeError

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of a word
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # sample position in the output
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class SpeechError(MomeError, RuntimeError):
    """espeak-ng could not be loaded or did not speak the text as asked; the message says what."""


@dataclass(frozen=True)
class Voice:
    """How one synthetic talker sounds."""

    name: str  # espeak voice: "<language>+<variant>", e.g. "en-us+f3"
    rate: int  # words per minute (espeak range 80..450)
    pitch: int  # 0..100, 50 = the variant's normal
    pitch_range: int  # 0..100, 0 = monotone
    word_gap: int = 0  # extra pause between words, in 10 ms units


# (kind, sample position, 1-based character position, phoneme mnemonic) of WORD and PHONEME events
Event = tuple[int, int, int, bytes]


def _load_library() -> tuple[ctypes.CDLL, bytes | None]:
    errors = []
    try:
        import espeakng_loader

        return ctypes.CDLL(espeakng_loader.get_library_path()), espeakng_loader.get_data_path().encode()
    except (ImportError, OSError) as e:
        errors.append(f"espeakng_loader: {e}")
    try:
        return ctypes.CDLL("libespeak-ng.so.1"), None
    except OSError as e:
        errors.append(f"libespeak-ng.so.1: {e}")
    raise SpeechError(
        "cannot load libespeak-ng (" + "; ".join(errors) + "); install the PyPI package "
        "espeakng-loader or Debian's libespeak-ng1"
    )


class Espeak:
    """The initialised library of this process (espeak-ng has global state: build one per process)."""

    def __init__(self):
        self.lib, data_path = _load_library()
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_PHONEME_EVENTS
        )
        if self.sample_rate <= 0:
            raise SpeechError(f"espeak_Initialize failed (data path {data_path!r})")
        # breathy variants (f5, ...) mix in noise from a generator the library seeds from the clock
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):  # espeak-ng >= 1.52
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
        else:  # older libraries draw from the C library's rand()
            ctypes.CDLL(None).srand(0)
        self._chunks: list[bytes] = []
        self._events: list[Event] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the library holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * num_samples))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type in (EVENT_WORD, EVENT_PHONEME):
                name = e.id.string.split(b"\0")[0] if e.type == EVENT_PHONEME else b""
                self._events.append((e.type, e.sample, e.text_position, name))
            i += 1
        return 0

    def set_voice(self, voice: Voice) -> None:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise SpeechError(f"espeak-ng has no voice {voice.name!r} (use '<language>+<variant>', e.g. 'en-us+f3')")
        for param, value in (
            (_PARAM_RATE, voice.rate),
            (_PARAM_PITCH, voice.pitch),
            (_PARAM_RANGE, voice.pitch_range),
            (_PARAM_WORDGAP, voice.word_gap),
            (_PARAM_VOLUME, 100),
        ):
            self.lib.espeak_SetParameter(param, int(value), 0)

    def speak(self, text: str, voice: Voice | None = None) -> tuple[bytes, list[Event]]:
        """Native-rate int16 PCM (bytes) and the WORD / PHONEME events of one utterance (``voice``
        None: the voice set last)."""
        if voice is not None:
            self.set_voice(voice)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        if self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
            raise SpeechError(f"espeak_Synth failed for {text!r} with voice {voice.name!r}")
        return b"".join(self._chunks), self._events


# --------------------------------------------------------------------------------------------------
# The server and its client (messages: 8-byte length, then a pickle)
# --------------------------------------------------------------------------------------------------
def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


def serve() -> None:
    """Answer (text, voice fields) requests on stdin with ("ok", (pcm, events)) or ("error", message) on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        espeak = Espeak()
    except SpeechError as e:
        _send(stdout, ("error", str(e)))
        return
    _send(stdout, ("ready", espeak.sample_rate))
    while (request := _receive(stdin)) is not None:
        text, voice = request[0], Voice(*request[1])
        if not hasattr(os, "fork"):  # no fork: still works, but not reproducible
            try:
                _send(stdout, ("ok", espeak.speak(text, voice)))
            except SpeechError as e:
                _send(stdout, ("error", str(e)))
            continue
        pid = os.fork()
        if pid == 0:  # speak from the pristine state, answer, leave without any clean-up
            try:
                try:
                    answer = ("ok", espeak.speak(text, voice))
                except Exception as e:  # noqa: BLE001 - every failure goes back to the client
                    answer = ("error", f"{type(e).__name__}: {e}" if not isinstance(e, SpeechError) else str(e))
                _send(stdout, answer)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            _send(stdout, ("error", f"espeak-ng child died (status {status}) on {text!r}"))


class EspeakServer:
    """Client of a :func:`serve` process started on first use; one per client process."""

    def __init__(self):
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        kind, value = _receive(self._proc.stdout) or ("error", "the espeak-ng server exited at start")
        if kind != "ready":
            self.close()
            raise SpeechError(value)
        self.sample_rate: int = value

    def speak(self, text: str, voice: Voice) -> tuple[bytes, list[Event]]:
        _send(self._proc.stdin, (text, astuple(voice)))
        answer = _receive(self._proc.stdout)
        if answer is None:
            raise SpeechError(f"the espeak-ng server exited while speaking {text!r}")
        kind, payload = answer
        if kind != "ok":
            raise SpeechError(payload)
        return payload

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
        self._proc.stdout.close()


_SERVER: tuple[int, EspeakServer] | None = None


def server() -> EspeakServer:
    """This process's espeak-ng server (started on first use, and again in a forked child)."""
    global _SERVER
    if _SERVER is None or _SERVER[0] != os.getpid():
        _SERVER = (os.getpid(), EspeakServer())
    return _SERVER[1]


@atexit.register
def _close_server() -> None:
    if _SERVER is not None and _SERVER[0] == os.getpid():
        _SERVER[1].close()


if __name__ == "__main__":
    serve()
