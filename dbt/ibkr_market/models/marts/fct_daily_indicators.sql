{{ config(
    materialized='incremental',
    unique_key=['symbol', 'session_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['symbol', 'session_date'], 'unique': True}, {'columns': ['loaded_at']}],
    pre_hook="set local jit = {{ 'off' if is_incremental() else 'on' }}; set local work_mem = '256MB';
              set local maintenance_work_mem = '256MB'",
) }}
{#
  Settings for this model's transaction only (set local): memory for the window sorts and tuple stores and the
  index builds; JIT off for incremental runs, where compiling ~100 expressions costs more than the run takes. A full
  build is ~1 s (CPU) faster with JIT on, compilation included (python -m bench indicators).

  One row per symbol and session, TA-Lib conventions (see _marts__models.yml). Recursive indicators use
  the ewm_* macros: block-anchored window sums, exact to machine precision.

  Incremental runs rebuild each symbol from its earliest new or changed session (restart) onward. The
  recursions restart from the state stored on the last kept row (avg_gain_14 and avg_loss_14 are kept
  for RSI, macd + ema_26 is MACD's fast EMA) and the moving windows read the 199 sessions before the
  restart; a symbol with less history, or whose kept row is missing, is rebuilt from its first session.
#}
{%- set k12, k26, k9, w14 = 2 / 13, 2 / 27, 2 / 10, 1 / 14 -%}
{#- decay per recursion; recursions with the same decay share its powers (ema_12 and MACD's fast EMA; Wilder's) -#}
{%- set decay = {'12': 1 - k12, '26': 1 - k26, '14': 1 - w14, '9': 1 - k9} -%}
{%- set carried = is_incremental() -%}
{%- set lookback = 199 -%}  {# the longest moving window (SMA 200) less one #}
{%- set carry_cols = 'restart_index, carry_rn, carry_ema_12, carry_ema_26, carry_macd_fast, carry_gain, carry_loss, carry_tr, carry_signal' -%}
with
{%- if carried %}
restarts as (
    select symbol, min(session_index) as restart_index
    from {{ ref('int_daily_bars_enriched') }}
    where loaded_at > {{ high_water_mark() }}
    group by symbol
),

states as (
    select
        r.symbol,
        case when k.macd_signal is not null then r.restart_index else 0 end as restart_index,
        case when k.macd_signal is not null then r.restart_index - 1 end as carry_rn,
        k.ema_12 as carry_ema_12,
        k.ema_26 as carry_ema_26,
        k.macd + k.ema_26 as carry_macd_fast,
        k.avg_gain_14 as carry_gain,
        k.avg_loss_14 as carry_loss,
        k.atr_14 as carry_tr,
        k.macd_signal as carry_signal
    from restarts r
    left join {{ ref('int_daily_bars_enriched') }} e
        on e.symbol = r.symbol and e.session_index = r.restart_index - 1 and r.restart_index > {{ lookback }}
    left join {{ this }} k
        on k.symbol = e.symbol and k.session_date = e.session_date
        and k.avg_gain_14 is not null and k.avg_loss_14 is not null and k.atr_14 is not null
),

inputs as (
    select e.*, s.restart_index, s.carry_rn, s.carry_ema_12, s.carry_ema_26, s.carry_macd_fast, s.carry_gain,
        s.carry_loss, s.carry_tr, s.carry_signal
    from states s
    cross join lateral (  -- per symbol, an index range scan of the sessions it needs
        select *
        from {{ ref('int_daily_bars_enriched') }} i
        where i.symbol = s.symbol
            and i.session_index >= case when s.carry_rn is null then 0 else s.restart_index - {{ lookback }} end
        offset 0  -- keeps the subquery from being flattened into a merge join over every session
    ) e
),
{%- endif %}

{#- Each CTE below is one pass over the rows (one or two WindowAgg nodes) and hands on only the columns still
    needed. Every window orders a symbol's rows by (blk, rn), the same order as rn, so one sort serves all. #}
bars as (
    select
        symbol, session_index as rn, session_index / {{ var('ewm_block') }} as blk, close, volume, true_range,
        greatest(close - prev_close, 0) as gain,
        greatest(prev_close - close, 0) as loss,
        session_date, loaded_at{{ ', ' ~ carry_cols if carried }}
    from {{ 'inputs' if carried else ref('int_daily_bars_enriched') }}
),

windows as (
    select
        symbol, rn, blk, close, volume, true_range, gain, loss, session_date, loaded_at,
        {{- ' ' ~ carry_cols ~ ',' if carried }}
        sum(close) over by_symbol as cum_close,  -- moving sums are differences of running sums (see sma())
        sum(volume) over by_symbol as cum_volume,
        {{ stddev_pop_n('close', 20) }} as close_std_20,
        {{ stddev_pop_n('volume', 20) }} as volume_std_20,
        -- seeds: the SMA of each recursion's first n inputs (TA-Lib compatibility mode), a sum read at its last row
        -- (see seed()); TA-Lib's MACD seeds its fast EMA where the slow one starts (row 25), with the 12 closes
        -- ending there. The EMA seeds are cum_close at rows 11 and 25.
        {{ seed_sum('close', 14, 25) }} as sum_close_14_25,
        {{ seed_sum('gain', 1, 14) }} as sum_gain_1_14,
        {{ seed_sum('loss', 1, 14) }} as sum_loss_1_14,
        {{ seed_sum('true_range', 1, 14) }} as sum_tr_1_14,
        {%- for n, r in decay.items() if n != '9' %}
        {{ ewm_factor(r, 'anchor') }} as anchor_{{ n }},  {# computed once here, not once per use #}
        {{ ewm_factor(r, 'value') }} as value_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from bars
    window {{ ewm_windows() }}
),

block_sums as (
    select
        symbol, rn, blk, close, volume, session_date, loaded_at, cum_close, cum_volume, close_std_20, volume_std_20,
        value_12, value_26, value_14,
        {{- ' ' ~ carry_cols ~ ',' if carried }}
        {{ ewm_block_sum(ewm_input('close', k12, 11, seed('cum_close', 0, 11), carried and 'carry_ema_12'), '12') }} as s_ema_12,
        {{ ewm_block_sum(ewm_input('close', k26, 25, seed('cum_close', 0, 25), carried and 'carry_ema_26'), '26') }} as s_ema_26,
        {{ ewm_block_sum(ewm_input('close', k12, 25, seed('sum_close_14_25', 14, 25), carried and 'carry_macd_fast'), '12') }} as s_macd_fast,
        {{ ewm_block_sum(ewm_input('gain', w14, 14, seed('sum_gain_1_14', 1, 14), carried and 'carry_gain'), '14') }} as s_gain,
        {{ ewm_block_sum(ewm_input('loss', w14, 14, seed('sum_loss_1_14', 1, 14), carried and 'carry_loss'), '14') }} as s_loss,
        {{ ewm_block_sum(ewm_input('true_range', w14, 14, seed('sum_tr_1_14', 1, 14), carried and 'carry_tr'), '14') }} as s_tr
    from windows
    window {{ ewm_windows() }}
),

smoothed as (
    select
        symbol, rn, blk, close, session_date, loaded_at,
        {{- ' restart_index, carry_rn, carry_signal,' if carried }}
        {{ sma('cum_close', 20) }} as sma_20,
        {{ sma('cum_close', 50) }} as sma_50,
        {{ sma('cum_close', 200) }} as sma_200,
        close_std_20,
        (volume - {{ sma('cum_volume', 20) }}) / nullif(volume_std_20, 0) as volume_zscore_20,  -- exact mean: volumes are whole shares
        case when rn >= 11 then {{ ewm_value('s_ema_12', '12', decay['12']) }} end as ema_12,
        case when rn >= 25 then {{ ewm_value('s_ema_26', '26', decay['26']) }} end as ema_26,
        case when rn >= 25 then {{ ewm_value('s_macd_fast', '12', decay['12']) }} end as macd_fast,
        case when rn >= 14 then {{ ewm_value('s_gain', '14', decay['14']) }} end as avg_gain_14,
        case when rn >= 14 then {{ ewm_value('s_loss', '14', decay['14']) }} end as avg_loss_14,
        case when rn >= 14 then {{ ewm_value('s_tr', '14', decay['14']) }} end as atr_14,
        -- the signal's seed, the mean of MACD at rows 25..33: there (block 0) MACD is its two EMAs' in-block sums
        {{ seed_sum(ewm_value('s_macd_fast', '12', decay['12'], first_block=true) ~ ' - '
                    ~ ewm_value('s_ema_26', '26', decay['26'], first_block=true), 25, 33) }} as sum_macd_25_33,
        {{ ewm_factor(decay['9'], 'anchor') }} as anchor_9,
        {{ ewm_factor(decay['9'], 'value') }} as value_9
    from block_sums  -- (incremental: rows before carry_rn add nothing to the recursions, they only feed the SMAs)
    window {{ ewm_windows() }}
),

signal_sums as (
    select
        *,
        macd_fast - ema_26 as macd_raw,
        {{ ewm_block_sum(ewm_input('(macd_fast - ema_26)', k9, 33, seed('sum_macd_25_33', 25, 33), carried and 'carry_signal'), '9') }} as s_signal
    from smoothed
    window {{ ewm_windows() }}
),

signal as (
    select
        *,
        case when rn >= 33 then {{ ewm_value('s_signal', '9', decay['9']) }} end as macd_signal
    from signal_sums
    window {{ ewm_windows() }}
)

select
    symbol,
    session_date,
    close,
    sma_20,
    sma_50,
    sma_200,
    ema_12,
    ema_26,
    case when rn >= 33 then macd_raw end as macd,
    macd_signal,
    macd_raw - macd_signal as macd_hist,
    case when avg_gain_14 + avg_loss_14 = 0 then 0
        else 100 * (avg_gain_14 / (avg_gain_14 + avg_loss_14)) end as rsi_14,  -- TA-Lib order: exactly 100 when no losses
    sma_20 + 2 * close_std_20 as bb_upper,
    sma_20 as bb_middle,
    sma_20 - 2 * close_std_20 as bb_lower,
    atr_14,
    volume_zscore_20,
    avg_gain_14,
    avg_loss_14,
    loaded_at
from signal
{%- if carried %}
where rn >= restart_index
{%- endif %}
