"""Issue 7 item 9 and the stack side of item 4, against a real broker and redis-server configured
securely: Kafka on SASL_SSL (SCRAM-SHA-512) only, Redis on TLS only with an ACL user (the default
user off), certificates made by openssl for these tests' own stack directory.

One private stack for the package (its own FINSTREAM_STACK_DIR and free ports) and one worker run on
it with FINSTREAM_REDIS_KEY_SECRET set (``conftest``); the modules examine, by idea, who may do what
(``test_access``), what the outputs and Redis show of ids (``test_pseudonyms``) and how the state
survives a Redis crash or loss (``test_state_recovery``).
"""
