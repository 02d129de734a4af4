"""``include.steps``: what a step writes to its task log in place of its output."""

from include.steps import step_summary


def test_a_step_logs_one_line_of_what_it_returned_not_the_whole_output():
    """The steps' outputs stay out of the task log (100s of KB for 100 symbols); one readable line stands in."""
    signals = {"run": {"run_id": "r"}, "signals": [{"symbol": "NVDA", "action": "BUY", "rationale": "x" * 500},
                                                 {"symbol": "AAPL", "action": "HOLD"},
                                                 {"symbol": "MSFT", "action": "HOLD"}]}
    assert step_summary(signals) == "signals 3: BUY NVDA | HOLD AAPL, MSFT"
    orders = {"run": {}, "counts": {"submitted": 1}, "intents": [{"symbol": "NVDA", "status": "submitted"}],
              "order_value": 2291.0}
    assert step_summary(orders) == "counts {'submitted': 1}; intents 1: submitted NVDA; order_value 2291.0"
    assert step_summary({"fetch_duration_seconds": 5.441858507999996}) == "fetch_duration_seconds 5.442"
    decisions = {"decisions": [{"symbol": f"S{i}", "status": "approved"} for i in range(100)]}
    line = step_summary(decisions)
    assert line.endswith("S7 +92") and len(line) < 120
    loaded = {"loaded": {s: {"received": 1, "inserted": 1} for s in ("AAPL", "GOOGL", "MSFT")}, "failed": {}}
    assert step_summary(loaded) == "loaded 3: AAPL, GOOGL, MSFT; failed 0"
    many = step_summary({"loaded": {f"SYN{i:04d}": {"received": 2520} for i in range(500)}, "failed": {"BAD": "x"}})
    assert many == ("loaded 500: SYN0000, SYN0001, SYN0002, SYN0003, SYN0004, SYN0005, SYN0006, SYN0007 +492;"
                    " failed 1: BAD")
