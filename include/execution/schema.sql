-- Order-intent ledger (idempotent DDL, applied under an advisory lock by include/execution/ledger.py).
-- One row per order decision, written before anything is sent; every change of status and every fill is an
-- order_events row. intent_id is deterministic from (strategy, symbol, session, mode) and is the cOID: one
-- decision per strategy, symbol and exchange session, whatever the runs, retries, clears or DAGs.
CREATE SCHEMA IF NOT EXISTS trading;

CREATE TABLE IF NOT EXISTS trading.order_intents (
    intent_id        text PRIMARY KEY,
    dag_id           text NOT NULL,
    run_id           text NOT NULL,
    try_number       integer NOT NULL,
    strategy_id      text NOT NULL,
    symbol           text NOT NULL,
    conid            bigint,
    side             text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity         numeric NOT NULL CHECK (quantity > 0),
    order_type       text NOT NULL,
    tif              text NOT NULL,
    limit_price      numeric CHECK (limit_price > 0),
    ref_price        numeric CHECK (ref_price > 0),
    mode             text NOT NULL CHECK (mode IN ('dry_run', 'paper', 'live')),
    account_id       text,
    status           text NOT NULL,
    broker_order_id  text,
    broker_status    text,
    coid             text NOT NULL UNIQUE,
    filled_quantity  numeric NOT NULL DEFAULT 0,
    avg_fill_price   numeric,
    last_error       text,
    mlflow_run_id    text,
    session_date     date,
    position_before  numeric,
    target_position  numeric,
    signal           jsonb,
    risk_decision    jsonb,
    dq_verdict       jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Ledgers created before decisions were keyed by session: add the columns, drop the per-run key (checked first:
-- an ALTER TABLE would take an exclusive lock on every call).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'order_intents_status_v2') THEN
        ALTER TABLE trading.order_intents ADD COLUMN IF NOT EXISTS session_date date;
        ALTER TABLE trading.order_intents ADD COLUMN IF NOT EXISTS position_before numeric;
        ALTER TABLE trading.order_intents ADD COLUMN IF NOT EXISTS target_position numeric;
        ALTER TABLE trading.order_intents
            DROP CONSTRAINT IF EXISTS order_intents_dag_id_run_id_strategy_id_symbol_side_key;
        ALTER TABLE trading.order_intents DROP CONSTRAINT IF EXISTS order_intents_status_check;
        ALTER TABLE trading.order_intents ADD CONSTRAINT order_intents_status_v2 CHECK (status IN (
            'pending', 'submitted', 'unknown', 'acknowledged', 'filled', 'cancelled', 'rejected', 'failed',
            'simulated', 'vetoed'));
    END IF;
END $$;

-- The portfolio monitor refreshes open intents; keep that scan small.
CREATE INDEX IF NOT EXISTS order_intents_open_idx ON trading.order_intents (updated_at)
    WHERE status IN ('pending', 'submitted', 'unknown', 'acknowledged');
-- Working orders of a mode (risk counts them) and one strategy's decisions of a session.
CREATE INDEX IF NOT EXISTS order_intents_session_idx ON trading.order_intents (mode, session_date, strategy_id);
CREATE INDEX IF NOT EXISTS order_intents_run_idx ON trading.order_intents (dag_id, run_id);

CREATE TABLE IF NOT EXISTS trading.order_events (
    event_id         bigserial PRIMARY KEY,
    intent_id        text NOT NULL REFERENCES trading.order_intents (intent_id) ON DELETE CASCADE,
    event_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind             text NOT NULL CHECK (kind IN ('status', 'fill', 'error')),
    status           text NOT NULL,
    previous_status  text,
    try_number       integer,
    broker_status    text,
    filled_quantity  numeric,
    avg_price        numeric,
    execution_id     text,
    message          text,
    payload          jsonb
);
CREATE INDEX IF NOT EXISTS order_events_intent_idx ON trading.order_events (intent_id, event_id);
-- One fill event per broker execution, however often the trades are re-read.
CREATE UNIQUE INDEX IF NOT EXISTS order_events_execution_idx ON trading.order_events (intent_id, execution_id)
    WHERE execution_id IS NOT NULL;
