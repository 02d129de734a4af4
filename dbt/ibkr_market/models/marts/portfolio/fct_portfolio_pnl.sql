-- P&L per account and symbol at the latest snapshot: unrealised = market value - quantity * average cost (the
-- broker's positions), realised = average-cost P&L of the stored executions (int_portfolio__trades_costed),
-- gross and net of commissions.
with latest as (
    select account_id, max(snapshot_at) as snapshot_at
    from {{ ref('stg_portfolio__account_summary') }}
    group by account_id
),

positions as (
    select p.account_id, p.symbol, sum(p.quantity) as quantity, sum(p.market_value) as market_value,
           sum(p.quantity * p.avg_cost) as cost_basis, max(p.market_price) as market_price
    from {{ ref('stg_portfolio__positions') }} as p
    inner join latest as l on l.account_id = p.account_id and l.snapshot_at = p.snapshot_at
    group by p.account_id, p.symbol
),

realized as (
    select t.account_id, t.symbol, sum(t.realized_pnl) as realized_pnl_gross, sum(t.commission) as commissions,
           count(*) as executions
    from {{ ref('int_portfolio__trades_costed') }} as t
    inner join latest as l on l.account_id = t.account_id
    where t.trade_at is null or t.trade_at <= l.snapshot_at
    group by t.account_id, t.symbol
),

symbols as (
    select account_id, symbol from positions
    union
    select account_id, symbol from realized
)

select
    s.account_id,
    s.symbol,
    l.snapshot_at,
    coalesce(p.quantity, 0)::float8 as quantity,
    case when p.quantity <> 0 then p.cost_basis / p.quantity end::float8 as avg_cost,
    p.market_price::float8 as market_price,
    coalesce(p.market_value, 0)::float8 as market_value,
    coalesce(p.cost_basis, 0)::float8 as cost_basis,
    coalesce(p.market_value - p.cost_basis, 0)::float8 as unrealized_pnl,
    coalesce(r.realized_pnl_gross, 0)::float8 as realized_pnl_gross,
    coalesce(r.commissions, 0)::float8 as commissions,
    (coalesce(r.realized_pnl_gross, 0) - coalesce(r.commissions, 0))::float8 as realized_pnl,
    (coalesce(p.market_value - p.cost_basis, 0) + coalesce(r.realized_pnl_gross, 0)
     - coalesce(r.commissions, 0))::float8 as total_pnl,
    coalesce(r.executions, 0) as executions
from symbols as s
inner join latest as l on l.account_id = s.account_id
left join positions as p on p.account_id = s.account_id and p.symbol = s.symbol
left join realized as r on r.account_id = s.account_id and r.symbol = s.symbol
