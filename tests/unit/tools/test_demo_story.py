"""The demo journey sends valid records, its spend links to the user, and the table says where a viewed product moved."""

import orjson

from stream.core.spend import spend_event
from stream.pipelines import PARSERS
from stream.tools.demo_story import JOURNEY, TXN, USER, describe, journey


def test_journey_records_are_valid_and_spend_links_to_the_user():
    recs = list(journey(3))
    assert len(recs) == len(JOURNEY) and {k for k, _, _ in recs} == {USER, TXN}
    for kind, key, value in recs:
        d = orjson.loads(value)
        if kind == USER:
            assert PARSERS[kind](d).user_id == key.decode() == "story-3"
        else:
            ev = spend_event(PARSERS[kind](d))
            assert ev is not None and ev["user_id"] == "story-3" and key.decode() == d["account_id"]


def test_describe_names_the_spend_and_where_a_viewed_product_moved():
    items = [{"product_id": p, "reason": "r"} for p in ("car", "fire", "private_liability", "trailer", "life")]
    step, holds, text = describe(
        {"trigger": {"product_id": "trailer", "action": "view"}, "holdings": [], "items": items}
    )
    assert step == "view trailer" and holds == "-" and text.endswith("(trailer now #4)")
    step, _, text = describe(
        {
            "trigger": {"product_id": "caravan", "action": "spend", "merchant_category": "7033"},
            "holdings": ["motorcycle"],
            "items": items,
        }
    )
    assert step == "spent at a campground" and "now #" not in text
