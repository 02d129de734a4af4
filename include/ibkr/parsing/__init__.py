"""Pure parsers from decoded Client Portal JSON to typed models (no I/O), one module per API area:
``common`` (shape checks, errors §3), ``market`` (§5, §6), ``account`` (§2, §4, §7), ``orders`` (§8)."""

from include.ibkr.parsing.account import (
    US_EXCHANGES,
    parse_account_summary,
    parse_accounts,
    parse_auth_status,
    parse_ledger,
    parse_positions,
    parse_secdef_search,
    parse_tickle,
    parse_trsrv_stocks,
)
from include.ibkr.parsing.common import (
    expect_dict,
    expect_list,
    malformed,
    parse_error,
    snippet,
    to_float,
    to_int,
    to_str,
)
from include.ibkr.parsing.market import (
    BarColumns,
    is_preflight,
    parse_history,
    parse_history_body,
    parse_price,
    parse_quantity_suffix,
    parse_snapshot,
)
from include.ibkr.parsing.orders import (
    PLACE_ENDPOINT,
    normalise_side,
    parse_cancel,
    parse_live_orders,
    parse_order_status,
    parse_order_submission,
    parse_trades,
)

__all__ = [
    "PLACE_ENDPOINT", "US_EXCHANGES", "BarColumns", "expect_dict", "expect_list", "is_preflight", "malformed",
    "normalise_side", "parse_account_summary", "parse_accounts", "parse_auth_status", "parse_cancel", "parse_error",
    "parse_history", "parse_history_body",
    "parse_ledger", "parse_live_orders", "parse_order_status", "parse_order_submission", "parse_positions",
    "parse_price", "parse_quantity_suffix", "parse_secdef_search", "parse_snapshot", "parse_tickle", "parse_trades",
    "parse_trsrv_stocks", "snippet", "to_float", "to_int", "to_str",
]  # fmt: skip
