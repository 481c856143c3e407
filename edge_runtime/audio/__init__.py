"""Audio in: everything that turns microphones, WAV files and satellite payloads into standard
PCM (16 kHz mono 16-bit little-endian, `format.STANDARD`), and the voice activity detection
that cuts that stream into utterances. `format` converts and parses WAV, `sources` reads files
and microphones (PortAudio is loaded only when a microphone opens), `satellite` parses the
audio payloads satellites send over MQTT, and `vad` finds where speech starts and ends. Nothing
here decodes speech, publishes on MQTT or knows about requests beyond carrying their ids: the
stages downstream take standard PCM and never ask what format it came in.
"""
