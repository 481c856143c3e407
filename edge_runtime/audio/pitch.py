"""The pitch of a voice: the median fundamental frequency of its voiced frames.

Speech to text uses it to guess the length of the speaker's vocal tract before it decodes:
a voice pitched high (most women, children) has higher formants than the adult voices the
acoustic model learnt from, and is read better with its spectrum squeezed (see the
pocketsphinx engine's warps). Autocorrelation per frame, in one vectorised pass: about a
millisecond for a command of three seconds.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 640
"""40 ms: two periods of the lowest pitch looked for."""
HOP = 320
LOWEST_HZ, HIGHEST_HZ = 60.0, 400.0
"""Human voices, from a low bass to a child."""
VOICED_RMS = 300.0
"""A frame quieter than this (about -40 dBFS) is silence or noise, not a voice."""
PERIODIC = 0.5
"""The autocorrelation at the period, over the frame's energy, that makes a frame voiced."""


def median_pitch_hz(pcm: bytes) -> float | None:
    """The median pitch of the voiced frames of 16 kHz 16-bit mono audio; None without any."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if samples.size < FRAME:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(samples, FRAME)[::HOP]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.einsum("ij,ij->i", frames, frames)
    frames = frames[energy > FRAME * VOICED_RMS**2]
    if not len(frames):
        return None
    spectrum = np.fft.rfft(frames, n=2 * FRAME, axis=1)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :FRAME]
    shortest, longest = int(SAMPLE_RATE / HIGHEST_HZ), int(SAMPLE_RATE / LOWEST_HZ)
    lags = shortest + np.argmax(correlation[:, shortest:longest], axis=1)
    strength = correlation[np.arange(len(lags)), lags] / correlation[:, 0]
    voiced = lags[strength > PERIODIC]
    return float(np.median(SAMPLE_RATE / voiced)) if voiced.size else None
