-- Returns, price ranges and gaps per symbol and session. The first session of a symbol has no
-- previous close, so its return, gap and true range are NULL (undefined, not zero).
with bars as (
    select
        *,
        lag(close) over (partition by symbol order by session_date) as prev_close
    from {{ ref('stg_ibkr__daily_bars') }}
)

select
    symbol,
    session_date,
    open,
    high,
    low,
    close,
    volume,
    prev_close,
    close / prev_close - 1 as return_simple,
    ln(close / prev_close) as return_log,
    high - low as price_range,
    (high - low) / close as range_pct_of_close,
    case when prev_close is not null
        then greatest(high - low, abs(high - prev_close), abs(low - prev_close))
    end as true_range,
    open - prev_close as gap,
    open / prev_close - 1 as gap_pct,
    loaded_at
from bars
