"""rnnlab's version, on the ground floor so that a checkpoint can record it."""

__version__ = "0.1.0"
