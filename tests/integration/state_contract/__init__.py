"""The state contract: the same cases on every ``EntityStore`` backend, the in-process one
(``MemoryState``), a real redis-server (``RedisState``) and a real three-node Redis Cluster
(``RedisState`` on ``RedisCluster``). A backend that passes gives a job the same loads, the same
conflicts and the same stored bytes; docs/state.md states the contract in words.

The cases are split by what they hold a backend to: ``test_loads_and_saves`` (what a load returns and
a save stores, snapshots and redeliveries, many keys and their order), ``test_fences`` (a moved fence
is a conflict that keeps the other writer's state), ``test_expiry_and_keys`` (retention per kind and
pseudonymised keys). ``conftest`` gives each case the ``backend`` fixture (``backends``).
"""
