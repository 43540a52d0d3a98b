"""Security configuration that needs no server: client options, broker and Redis configs of the
local stack, pseudonyms. The same paths run against real servers in tests/integration/security/."""

from __future__ import annotations

import hashlib
import ssl

import orjson

from stream.core.pseudonyms import Pseudonyms, pseudonym, withheld_dead_letter
from stream.core.records import SourceRecord
from stream.settings import Settings
from stream.stack import kafka, kafka_security, redis_server

SECURE = dict(
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="svc",
    kafka_sasl_password="pw-k",
    kafka_bootstrap="127.0.0.1:19092",
)


def test_kafka_client_options_carry_tls_and_scram(tmp_path):
    s = Settings(**SECURE, stack_dir=tmp_path)
    opts = s.kafka_client_options()
    assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["sasl_plain_username"] == "svc" and opts["sasl_plain_password"] == "pw-k"
    assert isinstance(opts["ssl_context"], ssl.SSLContext) and opts["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "pw-k" not in repr(s)


def test_redis_tls_options_only_for_rediss(tmp_path):
    assert (
        Settings(redis_url="redis://127.0.0.1:6379/0", redis_ssl_cafile=tmp_path / "ca.pem").redis_client_options()
        == {}
    )
    s = Settings(redis_url="rediss://svc:pw-r@127.0.0.1:6380/0", redis_ssl_cafile=tmp_path / "ca.pem")
    assert s.redis_tls and s.redis_username == "svc"
    assert s.redis_client_options() == {"ssl_cert_reqs": "required", "ssl_ca_certs": str(tmp_path / "ca.pem")}
    assert "pw-r" not in s.redis_url_redacted and "pw-r" not in repr(s)


def test_stack_broker_has_no_plaintext_client_listener(tmp_path):
    s = Settings(**SECURE, stack_dir=tmp_path)
    props = dict(line.split("=", 1) for line in kafka.server_properties(s).splitlines())
    assert (
        props["listeners"].startswith("SASL_SSL://127.0.0.1:19092,")
        and "PLAINTEXT://" not in props["advertised.listeners"]
    )
    assert props["inter.broker.listener.name"] == "SASL_SSL" and props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == "PEM" and (tmp_path / "tls" / "ca.pem").exists()
    assert (
        props["authorizer.class.name"].endswith("StandardAuthorizer")
        and props["allow.everyone.if.no.acl.found"] == "false"
    )
    assert "User:svc" not in props["super.users"] and props["listener.security.protocol.map"].endswith("CONTROLLER:SSL")
    assert "pw-k" not in kafka.server_properties(s)  # the broker authenticates as its own user
    broker_user, broker_pw = kafka_security.broker_credentials(s)
    assert kafka_security.scram_credentials(s) == [
        "--add-scram",
        "SCRAM-SHA-512=[name=svc,password=pw-k]",
        "--add-scram",
        f"SCRAM-SHA-512=[name={broker_user},password={broker_pw}]",
    ]
    assert len(broker_pw) >= 24 and kafka_security.broker_credentials(s) == (broker_user, broker_pw)
    assert kafka_security.scram_credentials(Settings(stack_dir=tmp_path)) == []


def test_stack_redis_persists_and_takes_an_acl_user_over_tls(tmp_path):
    plain = redis_server.config(Settings(redis_url="redis://127.0.0.1:6390/0", stack_dir=tmp_path)).splitlines()
    assert {"appendonly yes", "maxmemory-policy noeviction", "port 6390", "bind 127.0.0.1"} <= set(plain)
    secure = redis_server.config(
        Settings(redis_url="rediss://svc:pw-r@127.0.0.1:6390/0", stack_dir=tmp_path)
    ).splitlines()
    digest = hashlib.sha256(b"pw-r").hexdigest()
    assert {"port 0", "tls-port 6390", "user default off", f"user svc on #{digest} {redis_server.ACL_RULES}"} <= set(
        secure
    )
    assert "pw-r" not in "\n".join(secure)


def test_pseudonyms_are_keyed_and_stable():
    a, b = pseudonym(b"k1", "acct-1"), pseudonym(b"k2", "acct-1")
    assert a != b and a == pseudonym(b"k1", b"acct-1") and len(a) == 32 and "acct" not in a
    assert Pseudonyms(None)("acct-1") == "acct-1" and not Pseudonyms(None).enabled
    assert Pseudonyms(b"k1")("acct-1") == a


def test_withheld_dead_letter_keeps_no_original_bytes():
    rec = SourceRecord("transactions", 1, 7, b"acct-42", b'{"account_id": "acct-42", "amount": "x"}')
    out = withheld_dead_letter("dead-letters", rec, "amount is not a number", Pseudonyms(b"k"))
    body = orjson.loads(out.value)
    assert b"acct-42" not in out.value + out.key
    assert body["original_key_pseudonym"] == pseudonym(b"k", "acct-42") and body["original_bytes"] == len(rec.value)
    assert body["source"] == {"topic": "transactions", "partition": 1, "offset": 7} and body["original_withheld"]
