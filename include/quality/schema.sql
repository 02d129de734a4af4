-- Per-symbol data-quality verdicts, one row per validation run and symbol. Idempotent: run before every write.
CREATE SCHEMA IF NOT EXISTS quality;

CREATE TABLE IF NOT EXISTS quality.symbol_verdicts (
    run_key        text        NOT NULL,  -- <dag_id>/<run_id>; a retried run overwrites its own rows
    symbol         text        NOT NULL,
    verdict        text        NOT NULL CHECK (verdict IN ('pass', 'warn', 'fail')),
    reasons        jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- strings naming symbol, date and check
    checked_at     timestamptz NOT NULL DEFAULT now(),
    range_start    date        NOT NULL,  -- exchange sessions checked, both ends included
    range_end      date        NOT NULL,  -- the last completed session when the run started
    bars           integer     NOT NULL,  -- raw bars of the symbol in the range
    last_session   date,                  -- its latest raw bar in the range
    failed_checks  integer     NOT NULL,
    warned_checks  integer     NOT NULL,
    PRIMARY KEY (run_key, symbol)
);
-- latest_verdicts(): newest verdict per symbol.
CREATE INDEX IF NOT EXISTS symbol_verdicts_latest_idx ON quality.symbol_verdicts (symbol, checked_at DESC);
-- session_verdicts(): per symbol and session, the widest range first, then the newest.
CREATE INDEX IF NOT EXISTS symbol_verdicts_session_idx
    ON quality.symbol_verdicts (symbol, range_end, range_start, checked_at DESC);
