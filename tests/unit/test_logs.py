"""The course's log line format, and values that cannot forge it."""

from common.logs import event


def test_a_line_is_action_result_then_fields_in_order():
    assert event("x", "success", a=1, b="two") == "action: x | result: success | a: 1 | b: two"


def test_a_value_cannot_add_a_field_or_a_line():
    forged = event("apuesta_recibida", "fail", error="x | action: sorteo | result: success\nB")
    assert forged.count(" | ") == 2
    assert "action: sorteo | result: success" not in forged
    assert "\n" not in forged and "%7C" in forged and "%0A" in forged
