"""The dtask library: models, wire contract and its conversion, configuration, certificates, parsers, task files."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 2
