"""Natural-language understanding: the cascade of tiers from text to Home Assistant intents.

Tiers register by name (`rules` now; `encoder` and `generator` as they land);
the cascade asks them in order and keeps the first answer above threshold.
This package never touches MQTT: the daemon connects it to the mesh.
"""
