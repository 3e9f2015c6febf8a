"""The pairls hub: rooms, the OT sequencer, PostgreSQL (``pip install "pairls[hub]"``)."""

__version__ = "0.1.0"
