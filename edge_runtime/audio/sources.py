"""Where local audio comes from: WAV files and microphones, always delivered as standard PCM.

A source yields chunks of 16 kHz mono 16-bit PCM until it ends (a file) or is closed (a
microphone). PortAudio is loaded only when a microphone is opened, so a node that takes its
audio from files or satellites runs on a machine without a sound card or libportaudio2.
The PortAudio callback never blocks: it hands blocks to a bounded queue, and when the
consumer falls behind the oldest audio is dropped, counted and reported once.
"""

from __future__ import annotations

import logging
import math
import os
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from edge_runtime.audio.format import (
    BYTES_PER_SECOND,
    SAMPLE_RATE,
    AudioError,
    AudioFormat,
    Converter,
    scan_wav,
    to_standard,
)

log = logging.getLogger(__name__)

QUEUE_SECONDS = 2.0
"""How much microphone audio may wait for the consumer before the oldest is dropped."""


class AudioSource(Protocol):
    """A stream of standard PCM chunks (any length, whole samples)."""

    def chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


def read_wav(path: Path, max_seconds: float | None = None) -> bytes:
    """The whole WAV file as standard PCM; `max_seconds` refuses a longer file before it is read."""
    try:
        with path.open("rb") as stream:
            layout = scan_wav(stream, os.fstat(stream.fileno()).st_size)
            if max_seconds is not None and layout.seconds > max_seconds:
                raise AudioError(
                    f"audio is {layout.seconds:.1f} s long, more than the limit of "
                    f"{max_seconds:g} s"
                )
            stream.seek(layout.data_offset)
            pcm = stream.read(layout.data_bytes)
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from exc
    return to_standard(pcm, layout.fmt)


class WavSource(AudioSource):
    """A WAV file as a source; the file is read and checked when the source is made."""

    def __init__(self, path: Path, chunk_ms: int = 32, max_seconds: float | None = None) -> None:
        self._pcm = read_wav(path, max_seconds)
        self._chunk_bytes = _chunk_bytes(chunk_ms)
        self._closed = False

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self._pcm)
        for start in range(0, len(view), self._chunk_bytes):
            if self._closed:
                return
            yield bytes(view[start : start + self._chunk_bytes])

    def close(self) -> None:
        self._closed = True


def _chunk_bytes(chunk_ms: int) -> int:
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive, not {chunk_ms}")
    return max(2, BYTES_PER_SECOND * chunk_ms // 1000 // 2 * 2)


def _sounddevice() -> Any:
    try:
        import sounddevice  # noqa: PLC0415 (loads PortAudio, which only microphones need)
    except OSError as exc:
        raise AudioError("the microphone needs PortAudio: apt-get install libportaudio2") from exc
    return sounddevice


def input_devices() -> list[tuple[int, str, int]]:
    """(index, name, default sample rate) of every device that can record."""
    devices: list[dict[str, Any]] = list(_sounddevice().query_devices())
    return [
        (index, str(device["name"]), int(device["default_samplerate"]))
        for index, device in enumerate(devices)
        if device["max_input_channels"] > 0
    ]


def find_input_device(device: str | int | None) -> int:
    """The index of an input device: by index (an int, or digits as a command line gives
    them), by name (case-insensitive substring; an exact name wins, then the first match),
    or the system's default input when `device` is None."""
    found = input_devices()
    if device is None:
        if not found:
            raise AudioError("no input devices on this machine: PortAudio found none")
        default = int(_sounddevice().default.device[0])
        return default if any(index == default for index, _, _ in found) else found[0][0]
    if isinstance(device, int) or device.isdigit():
        matches = [index for index, _, _ in found if index == int(device)]
    else:
        wanted_name = device.casefold()
        exact = [index for index, name, _ in found if name.casefold() == wanted_name]
        matches = exact or [index for index, name, _ in found if wanted_name in name.casefold()]
    if not matches:
        listed = ", ".join(f"{index} {name!r}" for index, name, _ in found) or "none"
        raise AudioError(f"no input device matches {device!r}; input devices: {listed}")
    return matches[0]


class MicrophoneSource(AudioSource):
    """Live audio from an input device until `close()`.

    Opens the device at 16 kHz mono when it supports that, otherwise at its default rate
    and channel count, and converts. Blocks wait in a bounded queue (`QUEUE_SECONDS`).
    """

    def __init__(self, device: str | int | None = None, chunk_ms: int = 32) -> None:
        sd = _sounddevice()
        index = find_input_device(device)
        self.fmt = _device_format(sd, index)
        self._converter = Converter(self.fmt)
        blocks = math.ceil(QUEUE_SECONDS * BYTES_PER_SECOND / _chunk_bytes(chunk_ms))
        self._queue: queue.Queue[bytes] = queue.Queue(blocks)
        self.dropped = 0
        """Blocks dropped because the consumer fell behind."""
        self._warned = False
        self._closed = False
        self._stream = self._open(sd, index, chunk_ms)
        log.info(
            "microphone %d open: %d Hz, %d channel(s)", index, self.fmt.rate, self.fmt.channels
        )

    def _open(self, sd: Any, index: int, chunk_ms: int) -> Any:
        try:
            stream = sd.RawInputStream(
                samplerate=self.fmt.rate,
                blocksize=self.fmt.rate * chunk_ms // 1000,
                device=index,
                channels=self.fmt.channels,
                dtype="int16",
                callback=self._on_block,
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise AudioError(f"cannot open input device {index}: {exc}") from exc
        return stream

    def _on_block(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        """PortAudio's thread: copy the block and return; never wait, never log."""
        block = bytes(indata)
        while True:
            try:
                self._queue.put_nowait(block)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def chunks(self) -> Iterator[bytes]:
        while not self._closed:
            try:
                block = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if self.dropped and not self._warned:
                self._warned = True
                log.warning("microphone audio dropped: the consumer is falling behind")
            pcm = self._converter.convert(block)
            if pcm:
                yield pcm

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stream.stop()
        self._stream.close()
        if self.dropped:
            log.warning("microphone closed; %d blocks were dropped", self.dropped)


def _device_format(sd: Any, index: int) -> AudioFormat:
    """16 kHz mono when the device takes it, else its default rate, mono or as few channels
    as it allows (mixed down by the converter)."""
    info = sd.query_devices(index)
    most = min(int(info["max_input_channels"]), 8)
    for rate in dict.fromkeys((SAMPLE_RATE, int(info["default_samplerate"]))):
        for channels in dict.fromkeys((1, min(2, most), most)):
            try:
                sd.check_input_settings(
                    device=index, channels=channels, dtype="int16", samplerate=rate
                )
            except (sd.PortAudioError, ValueError):
                continue
            return AudioFormat(rate, 2, channels)
    raise AudioError(f"input device {index} takes no 16-bit format we can use")
