{{ config(
    materialized='incremental',
    unique_key=['symbol', 'session_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['symbol', 'session_date'], 'unique': True},
        {'columns': ['symbol', 'session_index']},
        {'columns': ['loaded_at']},
    ],
    post_hook="{{ 'analyze ' ~ this if not is_incremental() else 'select 1' }}",
) }}
{# post_hook: a rebuilt table gets planner statistics at once (dbt does not analyze; autovacuum would, later), so
   the next incremental run's per-symbol look-ups use the indexes instead of scanning every session. #}
-- Returns, price ranges and gaps per symbol and session, with each session's 0-based position in the
-- symbol's history (session_index). The first session of a symbol has no previous close, so its
-- return, gap and true range are NULL (undefined, not zero).
--
-- Incremental runs rebuild, per symbol, every session from the earliest new or corrected raw bar
-- (raw loaded_at past this table's high-water mark) onward: a corrected bar changes the next
-- session's previous close, and a backfilled session shifts every later session_index.
{% if is_incremental() %}
with changed as (
    select symbol, min(session_date) as from_date
    from {{ ref('stg_ibkr__daily_bars') }}
    where loaded_at > {{ high_water_mark() }}
    group by symbol
),

anchors as (
    -- the last unchanged session before the rebuild: its close and position carry forward
    select c.symbol, c.from_date, a.close as anchor_close, coalesce(a.session_index, -1) as anchor_index
    from changed c
    left join lateral (
        select t.close, t.session_index
        from {{ this }} t
        where t.symbol = c.symbol and t.session_date < c.from_date
        order by t.session_date desc
        limit 1
    ) a on true
),

source_bars as (
    select b.*, a.anchor_close, a.anchor_index
    from {{ ref('stg_ibkr__daily_bars') }} b
    join anchors a on a.symbol = b.symbol and b.session_date >= a.from_date
),
{% else %}
with source_bars as (
    select *, null::float8 as anchor_close, -1::bigint as anchor_index
    from {{ ref('stg_ibkr__daily_bars') }}
),
{% endif %}

bars as (
    select
        *,
        coalesce(lag(close) over by_date, anchor_close) as prev_close,
        anchor_index + row_number() over by_date as session_index
    from source_bars
    window by_date as (partition by symbol order by session_date)
)

select
    symbol,
    session_date,
    session_index,
    open,
    high,
    low,
    close,
    volume,
    prev_close,
    close / nullif(prev_close, 0) - 1 as return_simple,
    -- guarded: a bad raw bar (non-positive price) must reach the quality checks, not abort the build
    case when close > 0 and prev_close > 0 then ln(close / prev_close) end as return_log,
    high - low as price_range,
    (high - low) / nullif(close, 0) as range_pct_of_close,
    case when prev_close is not null
        then greatest(high - low, abs(high - prev_close), abs(low - prev_close))
    end as true_range,
    open - prev_close as gap,
    open / nullif(prev_close, 0) - 1 as gap_pct,
    loaded_at
from bars
