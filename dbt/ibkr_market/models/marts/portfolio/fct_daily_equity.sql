-- Equity per account and New York calendar day (the day's last snapshot), its return, the running peak and
-- the drawdown from it: drawdown_pct = (running_peak - equity) / running_peak >= 0, max_drawdown_pct = the
-- largest drawdown_pct so far.
with last_of_day as (
    select distinct on (account_id, (snapshot_at at time zone 'America/New_York')::date)
        account_id,
        (snapshot_at at time zone 'America/New_York')::date as equity_date,
        snapshot_at,
        equity,
        cash
    from {{ ref('fct_portfolio_exposure') }}
    where equity is not null
    order by account_id, (snapshot_at at time zone 'America/New_York')::date, snapshot_at desc
),

peaks as (
    select
        *,
        lag(equity) over (partition by account_id order by equity_date) as prev_equity,
        max(equity) over (partition by account_id order by equity_date rows unbounded preceding) as running_peak
    from last_of_day
),

drawdowns as (
    select
        *,
        case when running_peak > 0 then (running_peak - equity) / running_peak end as drawdown_pct
    from peaks
)

select
    account_id,
    equity_date,
    snapshot_at,
    equity::float8 as equity,
    cash::float8 as cash,
    (equity / nullif(prev_equity, 0) - 1)::float8 as daily_return,
    running_peak::float8 as running_peak,
    (equity - running_peak)::float8 as drawdown,
    drawdown_pct::float8 as drawdown_pct,
    max(drawdown_pct) over (partition by account_id order by equity_date rows unbounded preceding)::float8
        as max_drawdown_pct
from drawdowns
