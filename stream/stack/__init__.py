"""Local Kafka (KRaft) + Redis for development and tests: ``finstream stack install|up|down|status``.

Real servers only (Apache Kafka jars from Maven Central, Debian's redis-server), bound to 127.0.0.1,
tracked by PID files in the settings' stack directory so that ``down`` stops exactly what ``up`` started.
"""
