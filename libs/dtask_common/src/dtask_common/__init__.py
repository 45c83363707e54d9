"""Shared core of dtask: models, configuration, certificates, parsers and the client."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
