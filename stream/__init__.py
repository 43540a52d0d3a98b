"""finstream serving side: the pure core (``stream.core``), its adapters and the Faust worker."""

__version__ = "0.1.0"
