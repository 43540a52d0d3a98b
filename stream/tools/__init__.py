"""Tools around the runtime, never imported by it: ``finstream bench``, ``demo``, ``replay``,
``score`` (batch scoring), ``rebuild``, the synthetic and real-card feeds and the metrics A/B.
The worker runs without this package (``tests/unit/test_import_graph.py``)."""
