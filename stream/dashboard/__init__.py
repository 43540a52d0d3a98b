"""``finstream dashboard``: a live web page of the outputs and the worker's metrics (127.0.0.1)."""
