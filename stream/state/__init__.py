"""State backends behind ``stream.types`` (Redis today; the interface is what the engine sees)."""
