-- Raw market data as received from the IBKR gateway. Idempotent: safe to run on every task start.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;

CREATE TABLE IF NOT EXISTS raw.daily_bars (
    symbol        text             NOT NULL,
    conid         bigint           NOT NULL,
    session_date  date             NOT NULL,
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,  -- shares (the gateway reports US volume in lots of 100)
    source        text             NOT NULL,  -- "ibkr:<gateway server name>", so simulated data is visible
    run_id        text,                        -- Airflow run that last wrote the row
    loaded_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, session_date)
);
-- dbt's incremental models find new and corrected bars by loaded_at (their high-water mark).
CREATE INDEX IF NOT EXISTS daily_bars_loaded_at_idx ON raw.daily_bars (loaded_at);

CREATE TABLE IF NOT EXISTS raw.market_snapshots (
    symbol           text        NOT NULL,
    conid            bigint      NOT NULL,
    captured_at      timestamptz NOT NULL,  -- gateway "_updated" time, else receive time: the dedupe key with symbol
    last             double precision,
    last_price_type  text,                  -- last | close (market closed, "C" prefix) | halted ("H")
    bid              double precision,
    ask              double precision,
    bid_size         double precision,
    ask_size         double precision,
    last_size        double precision,
    volume           double precision,
    day_high         double precision,
    day_low          double precision,
    open             double precision,
    prior_close      double precision,
    change           double precision,
    change_pct       double precision,
    md_availability  text,
    source           text        NOT NULL,
    run_id           text,
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, captured_at)
);
-- The gateway's "_updated" time only, NULL when it sent none: a quote of unknown age (captured_at cannot tell).
-- Checked for first: ALTER TABLE ... ADD COLUMN IF NOT EXISTS locks the table even when there is nothing to do, so
-- a task's schema check would wait for every open write to it (indexes: db.apply_ddl checks for them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'raw.market_snapshots'::regclass AND attname = 'quote_at' AND NOT attisdropped) THEN
        ALTER TABLE raw.market_snapshots ADD COLUMN quote_at timestamptz;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS raw.contracts (
    symbol        text PRIMARY KEY,
    conid         bigint NOT NULL,
    exchange      text,
    company_name  text,
    currency      text,
    resolved_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS raw.load_audit (
    load_id         bigserial PRIMARY KEY,
    table_name      text        NOT NULL,
    run_id          text,
    symbol          text        NOT NULL,
    rows_received   integer     NOT NULL,
    rows_inserted   integer     NOT NULL,
    rows_updated    integer     NOT NULL,
    rows_unchanged  integer     NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now()
);

-- Bars fetched by per-symbol tasks wait here until one transaction upserts the whole batch.
CREATE UNLOGGED TABLE IF NOT EXISTS staging.daily_bars (
    run_id        text             NOT NULL,
    symbol        text             NOT NULL,
    conid         bigint           NOT NULL,
    session_date  date             NOT NULL,
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,
    source        text             NOT NULL,
    staged_at     timestamptz      NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS daily_bars_run_symbol_idx ON staging.daily_bars (run_id, symbol);
