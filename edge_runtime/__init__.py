"""edge-runtime: an offline voice-assistant runtime for the edge.

Small int8 ONNX language models, local speech to text and MQTT, on a
Raspberry Pi, a Jetson or any Linux box. Nothing leaves the home.
"""

__version__ = "0.1.0"
