-- Portfolio monitor tables (idempotent DDL, applied through include.marketdata.db.apply_ddl).
-- raw.*: what the gateway reported, one snapshot per monitor run (run_key = dag_id/run_id: a re-run of the same
-- DAG run replaces its snapshot), loaded in one transaction. raw.broker_trades is keyed by the IBKR execution id
-- and accumulates beyond the gateway's 7-day window. trading.*: reconciliation results and accepted baselines.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS trading;

CREATE TABLE IF NOT EXISTS raw.portfolio_positions (
    run_key         text NOT NULL,
    snapshot_at     timestamptz NOT NULL,
    account_id      text NOT NULL,
    conid           bigint NOT NULL,
    symbol          text NOT NULL,
    asset_class     text,
    currency        text,
    quantity        double precision NOT NULL,
    market_price    double precision,
    market_value    double precision,
    avg_cost        double precision,
    unrealized_pnl  double precision,
    realized_pnl    double precision,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_key, conid)
);
CREATE INDEX IF NOT EXISTS portfolio_positions_snapshot_idx ON raw.portfolio_positions (account_id, snapshot_at);

CREATE TABLE IF NOT EXISTS raw.account_summary (
    run_key               text PRIMARY KEY,
    snapshot_at           timestamptz NOT NULL,
    account_id            text NOT NULL,
    net_liquidation       double precision,
    total_cash            double precision,
    gross_position_value  double precision,
    buying_power          double precision,
    maint_margin_req      double precision,
    summary_values        jsonb NOT NULL,
    loaded_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS raw.account_ledger (
    run_key             text NOT NULL,
    snapshot_at         timestamptz NOT NULL,
    account_id          text NOT NULL,
    currency            text NOT NULL,
    cash_balance        double precision,
    settled_cash        double precision,
    net_liquidation     double precision,
    stock_market_value  double precision,
    unrealized_pnl      double precision,
    realized_pnl        double precision,
    ledger_at           timestamptz,
    loaded_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_key, currency)
);

-- Open and recent orders as the gateway listed them (what reconciliation compares with the ledger).
CREATE TABLE IF NOT EXISTS raw.broker_orders (
    run_key            text NOT NULL,
    snapshot_at        timestamptz NOT NULL,
    account_id         text,
    order_id           bigint NOT NULL,
    coid               text,
    conid              bigint,
    symbol             text,
    side               text,
    status             text,
    order_type         text,
    total_size         double precision,
    filled_quantity    double precision,
    remaining_quantity double precision,
    price              double precision,
    avg_price          double precision,
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_key, order_id)
);

CREATE TABLE IF NOT EXISTS raw.broker_trades (
    execution_id   text PRIMARY KEY,
    account_id     text,
    conid          bigint,
    symbol         text,
    side           text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity       double precision NOT NULL CHECK (quantity > 0),
    price          double precision NOT NULL,
    commission     double precision,
    trade_at       timestamptz,
    coid           text,
    first_run_key  text NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS trading.reconciliations (
    reconciliation_id  bigserial PRIMARY KEY,
    run_key            text NOT NULL UNIQUE,
    snapshot_at        timestamptz NOT NULL,
    account_id         text NOT NULL,
    status             text NOT NULL CHECK (status IN ('clean', 'mismatch')),
    mismatch_count     integer NOT NULL,
    mismatches         jsonb NOT NULL,
    fingerprint        text,
    deferred           jsonb NOT NULL,
    state_before       text,
    state_after        text,
    halted             boolean NOT NULL DEFAULT false,
    alert_channels     jsonb,
    alert_error        text,
    reconciled_at      timestamptz NOT NULL DEFAULT now()
);

-- Holdings accepted as existing before (or outside) the system: reconciliation expects them on top of the
-- ledger's fills. The latest row per (account, symbol) counts; accept again to change it.
CREATE TABLE IF NOT EXISTS trading.reconciliation_baseline (
    baseline_id  bigserial PRIMARY KEY,
    account_id   text NOT NULL,
    symbol       text NOT NULL,
    quantity     double precision NOT NULL,
    reason       text NOT NULL,
    accepted_by  text NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reconciliation_baseline_idx ON trading.reconciliation_baseline
    (account_id, symbol, baseline_id DESC);
