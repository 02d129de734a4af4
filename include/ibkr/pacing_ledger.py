"""Gateway pacing shared by every process and host: the sliding windows of ``ratelimit`` kept in PostgreSQL.

IBKR paces the gateway, not a client, and answers an excess with 429 and, on the real gateway, a 10-minute
penalty box (docs: ibkr-cp-api.md §9). Under a scheduler every task is a process of its own (the keepalive's
tickle and live orders, ingestion, trading, the portfolio monitor), so a per-process limiter cannot keep the
gateway's windows. The ledger keeps, per gateway and window, the departure times of the last requests on the
database's clock; a request reserves the earliest slot all its windows allow (first come, first served) in one
statement, then sleeps until it. The history concurrency cap stays per process (ingestion's threads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

# A new name when the body changes: a database holding an older version creates this one (_connection).
FUNCTION = "ops.reserve_gateway_slot_v2"
DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.gateway_pacing (
    gateway  text NOT NULL,
    win      text NOT NULL,
    stamps   double precision[] NOT NULL DEFAULT '{}',  -- epoch seconds of the last reservations, oldest first
    PRIMARY KEY (gateway, win)
);
CREATE OR REPLACE FUNCTION ops.reserve_gateway_slot_v2(p_gateway text, p_windows text[], p_limits int[],
                                                       p_periods double precision[])
RETURNS double precision LANGUAGE plpgsql AS $$
-- The seconds to wait before sending: the earliest time, not before any earlier reservation, at which every
-- window (at most p_limits[i] requests in any p_periods[i] seconds) has room; that time is recorded in each.
DECLARE
    now_s double precision;
    at_s double precision := 0;
    w record;
    n int;
BEGIN
    INSERT INTO ops.gateway_pacing (gateway, win)
    SELECT p_gateway, x FROM unnest(p_windows) x ON CONFLICT DO NOTHING;
    FOR w IN
        SELECT p.stamps, x.lim, x.period
        FROM ops.gateway_pacing p JOIN unnest(p_windows, p_limits, p_periods) AS x(win, lim, period) USING (win)
        WHERE p.gateway = p_gateway
        ORDER BY p.win  -- one lock order for everyone: no deadlocks
        FOR UPDATE OF p
    LOOP
        n := cardinality(w.stamps);
        IF n > 0 THEN at_s := greatest(at_s, w.stamps[n]); END IF;
        IF n >= w.lim THEN at_s := greatest(at_s, w.stamps[n - w.lim + 1] + w.period); END IF;
    END LOOP;
    -- The clock is read once every window is locked: time spent waiting for another process's reservation is
    -- not time already waited (the request would leave that much after the slot recorded for it).
    now_s := extract(epoch FROM clock_timestamp());
    at_s := greatest(at_s, now_s);
    UPDATE ops.gateway_pacing p
    SET stamps = (p.stamps || at_s)[greatest(1, cardinality(p.stamps) + 2 - x.lim):]
    FROM unnest(p_windows, p_limits) AS x(win, lim)
    WHERE p.gateway = p_gateway AND p.win = x.win;
    RETURN at_s - now_s;
END $$;
"""


class PacingLedger:
    """``reserve(windows)`` -> seconds to sleep before the request may leave; windows are (name, limit, period).

    One connection per ledger (autocommit: each reservation is its own short transaction), used by one thread at
    a time. A database that cannot be reached raises: requests are not sent unpaced.
    """

    def __init__(self, dsn: str, gateway: str) -> None:
        import httpx

        url = httpx.URL(gateway)
        # the gateway's URL names its windows; credentials in it (if any) are not written to the database
        self.dsn, self.gateway = dsn, str(url.copy_with(username=None, password=None)) if url.userinfo else gateway
        self._conn: Any = None
        self._lock = threading.Lock()
        self.reservations = 0

    def reserve(self, windows: Sequence[tuple[str, int, float]]) -> float:
        if not windows:
            return 0.0
        names, limits, periods = (list(col) for col in zip(*windows, strict=True))
        with self._lock:
            for attempt in (1, 2):
                try:
                    with self._connection().cursor() as cur:
                        cur.execute(f"SELECT {FUNCTION}(%s, %s, %s, %s)", (self.gateway, names, limits, periods))
                        (delay,) = cur.fetchone()
                    self.reservations += 1
                    return max(0.0, float(delay))
                except Exception as exc:
                    import psycopg2
                    from psycopg2 import errors

                    self.close()
                    # a lost connection, or the ledger's schema dropped under it (reconnecting re-creates it)
                    again = (psycopg2.OperationalError, psycopg2.InterfaceError, errors.UndefinedFunction,
                             errors.UndefinedTable, errors.InvalidSchemaName)
                    if attempt == 2 or not isinstance(exc, again):
                        raise
                    log.warning("pacing ledger: %s; reconnecting once", str(exc).strip().splitlines()[0])
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        if self._conn is None:
            import psycopg2

            from include.marketdata.db import apply_ddl

            conn = psycopg2.connect(self.dsn, application_name="ibkr-pacing")
            try:
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT to_regprocedure(%s) IS NOT NULL",
                                (f"{FUNCTION}(text, text[], integer[], double precision[])",))
                    missing = not cur.fetchone()[0]
                if missing:
                    apply_ddl(conn, DDL)  # under the project's schema lock, like every package's tables
                conn.autocommit = True
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
