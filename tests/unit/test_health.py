from stream.health import Health


def test_ready_only_when_every_component_is_ok():
    h = Health(("kafka", "redis"))
    assert h.ready()[0] is False
    h.set("kafka", True)
    assert h.ready()[0] is False
    h.set("redis", True)
    ok, view = h.ready()
    assert ok and set(view) == {"kafka", "redis"}


def test_since_moves_only_on_a_flip():
    h = Health(("redis",))
    h.set("redis", True, "up")
    since = h.ready()[1]["redis"]["since"]
    h.set("redis", True, "still up")
    assert h.ready()[1]["redis"]["since"] == since
    h.set("redis", False, "connection refused")
    ok, view = h.ready()
    assert not ok and view["redis"]["detail"] == "connection refused"
