-- One row per account and snapshot: long/short/gross/net exposure (market values), leverage against the
-- equity (net liquidation; the BASE ledger row when the summary has none), and P&L in total: unrealised over
-- the snapshot's positions, realised (net of commissions) over the executions up to the snapshot.
with summary as (
    select s.run_key, s.account_id, s.snapshot_at, coalesce(s.net_liquidation, g.net_liquidation) as equity,
           coalesce(s.total_cash, g.cash_balance) as cash
    from {{ ref('stg_portfolio__account_summary') }} as s
    left join {{ ref('stg_portfolio__ledger') }} as g on g.run_key = s.run_key and g.currency = 'BASE'
),

positions as (
    select run_key,
           sum(case when market_value > 0 then market_value else 0 end) as long_exposure,
           sum(case when market_value < 0 then -market_value else 0 end) as short_exposure,
           sum(market_value - quantity * avg_cost) as unrealized_pnl,
           count(*) as positions
    from {{ ref('stg_portfolio__positions') }}
    group by run_key
),

realized as (
    select s.run_key, sum(t.realized_pnl - t.commission) as realized_pnl
    from summary as s
    inner join {{ ref('int_portfolio__trades_costed') }} as t
        on t.account_id = s.account_id and (t.trade_at is null or t.trade_at <= s.snapshot_at)
    group by s.run_key
)

select
    s.account_id,
    s.snapshot_at,
    s.run_key,
    s.equity::float8 as equity,
    s.cash::float8 as cash,
    coalesce(p.positions, 0) as positions,
    coalesce(p.long_exposure, 0)::float8 as long_exposure,
    coalesce(p.short_exposure, 0)::float8 as short_exposure,
    (coalesce(p.long_exposure, 0) + coalesce(p.short_exposure, 0))::float8 as gross_exposure,
    (coalesce(p.long_exposure, 0) - coalesce(p.short_exposure, 0))::float8 as net_exposure,
    ((coalesce(p.long_exposure, 0) + coalesce(p.short_exposure, 0)) / nullif(s.equity, 0))::float8 as gross_leverage,
    ((coalesce(p.long_exposure, 0) - coalesce(p.short_exposure, 0)) / nullif(s.equity, 0))::float8 as net_leverage,
    coalesce(p.unrealized_pnl, 0)::float8 as unrealized_pnl,
    coalesce(r.realized_pnl, 0)::float8 as realized_pnl,
    (coalesce(p.unrealized_pnl, 0) + coalesce(r.realized_pnl, 0))::float8 as total_pnl
from summary as s
left join positions as p on p.run_key = s.run_key
left join realized as r on r.run_key = s.run_key
