{{ config(materialized='table') }}
-- One row per symbol: the latest session's bar and indicators, its returns and ranges, and the
-- latest market snapshot (NULL when none was taken after that session's close). Signals read this.
with latest_session as (
    select distinct on (symbol) *
    from {{ ref('fct_daily_indicators') }}
    order by symbol, session_date desc
),

latest_snapshot as (
    select distinct on (symbol) *
    from {{ ref('stg_ibkr__market_snapshots') }}
    order by symbol, captured_at desc
)

select
    i.symbol,
    i.session_date,
    b.open,
    b.high,
    b.low,
    i.close,
    b.volume,
    b.return_simple,
    b.return_log,
    b.true_range,
    b.gap_pct,
    i.sma_20, i.sma_50, i.sma_200, i.ema_12, i.ema_26,
    i.macd, i.macd_signal, i.macd_hist, i.rsi_14,
    i.bb_upper, i.bb_middle, i.bb_lower, i.atr_14, i.volume_zscore_20,
    s.captured_at as snapshot_at,
    s.last_price as snapshot_last_price,
    s.last_price_type as snapshot_price_type,
    s.bid_price as snapshot_bid,
    s.ask_price as snapshot_ask,
    b.loaded_at as bar_loaded_at
from latest_session i
join {{ ref('int_daily_bars_enriched') }} b using (symbol, session_date)
left join latest_snapshot s on s.symbol = i.symbol and s.captured_at::date >= i.session_date
