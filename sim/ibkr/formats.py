"""String formats the gateway uses on the wire (prices, sizes, volumes, timestamps)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def day_ms(day: date) -> int:
    """Epoch ms of a date at 00:00 UTC: the `t` of daily bars (§6.1)."""
    return (day.toordinal() - 719163) * 86_400_000


def yymmddhhmmss(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%y%m%d%H%M%S")


def ib_time(at: datetime) -> str:
    """`YYYYMMDD-hh:mm:ss` in UTC (history startTime, trade_time)."""
    return at.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def parse_ib_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)


def price(value: float) -> str:
    return f"{value:.2f}"


def qty(value: float) -> str:
    """Quantities in order status are strings like "1.0" (§8.4)."""
    return repr(float(value))


def qty_word(value: float) -> str:
    """Order descriptions say "Buy 1 Limit", not "Buy 1.0 Limit"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def hundreds(shares: float) -> str:
    """Bid/ask sizes of US stocks are in round lots with thousands separators, e.g. "1,300" (§5)."""
    return f"{round(shares / 100):,}"


def volume_km(shares: float) -> str:
    """Field 87 is formatted with a K/M suffix, e.g. "12.3M" (§5)."""
    if shares >= 1_000_000:
        return f"{shares / 1_000_000:.1f}M"
    if shares >= 1_000:
        return f"{shares / 1_000:.1f}K"
    return str(int(shares))


def money(value: float) -> str:
    return f"{value:,.2f}"
