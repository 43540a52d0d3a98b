"""The engine: one processor per job, each a batch -> output records function over the pure core,
with state and model sessions injected. Faust, the bench and the tests all drive these."""
