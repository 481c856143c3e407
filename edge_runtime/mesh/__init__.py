"""The MQTT side of a node: the client, the topic names, Hermes compatibility.

This package never imports `nlu`: the daemon hands it bytes to publish and
takes inbound messages from its queue.
"""
