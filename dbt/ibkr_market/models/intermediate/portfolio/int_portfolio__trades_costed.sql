{#
  Average-cost accounting over the executions of each account and symbol, in (trade_at, execution_id) order:
  buys/sells that open or add to a position re-average its cost; those that reduce it realise
  closed quantity * (price - average cost) (sign-flipped for shorts) and keep the average; one that flips the
  position closes the old side and opens the rest at its price. Commissions are kept apart (realized_pnl is
  gross). The same rules as IBKR's (and the simulator's) average-cost P&L.
#}
with recursive ordered as (
    select
        account_id,
        symbol,
        execution_id,
        trade_at,
        side,
        quantity,
        price,
        coalesce(commission, 0) as commission,
        case when side = 'SELL' then -quantity else quantity end as signed_quantity,
        row_number() over (partition by account_id, symbol order by trade_at, execution_id) as seq
    from {{ ref('stg_portfolio__trades') }}
),

costed as (
    select
        account_id, symbol, execution_id, trade_at, side, quantity, price, commission, signed_quantity, seq,
        0::float8 as position_before,
        signed_quantity as position_after,
        price as avg_cost_after,
        0::float8 as realized_pnl
    from ordered
    where seq = 1

    union all

    select
        n.account_id, n.symbol, n.execution_id, n.trade_at, n.side, n.quantity, n.price, n.commission,
        n.signed_quantity, n.seq,
        c.position_after as position_before,
        c.position_after + n.signed_quantity as position_after,
        case
            when abs(c.position_after + n.signed_quantity) < 1e-9 then 0::float8
            when abs(c.position_after) < 1e-9 or sign(c.position_after) = sign(n.signed_quantity)
                then (c.avg_cost_after * abs(c.position_after) + n.price * n.quantity)
                     / (abs(c.position_after) + n.quantity)
            when n.quantity > abs(c.position_after) then n.price
            else c.avg_cost_after
        end as avg_cost_after,
        case
            when abs(c.position_after) < 1e-9 or sign(c.position_after) = sign(n.signed_quantity) then 0::float8
            else least(n.quantity, abs(c.position_after)) * (n.price - c.avg_cost_after) * sign(c.position_after)
        end as realized_pnl
    from costed as c
    inner join ordered as n
        on n.account_id = c.account_id and n.symbol = c.symbol and n.seq = c.seq + 1
)

select
    account_id,
    symbol,
    execution_id,
    trade_at,
    side,
    quantity,
    price,
    commission,
    seq as execution_seq,
    position_before,
    position_after,
    avg_cost_after,
    realized_pnl
from costed
