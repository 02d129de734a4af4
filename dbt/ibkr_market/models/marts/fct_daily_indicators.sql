{{ config(
    materialized='incremental',
    unique_key=['symbol', 'session_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['symbol', 'session_date'], 'unique': True}, {'columns': ['loaded_at']}],
    pre_hook="set work_mem = '256MB'; set jit = {{ 'off' if is_incremental() else 'on' }}",
    post_hook="reset work_mem; reset jit",
) }}
{#
  JIT is off for incremental runs: compiling this many expressions costs more than a small run takes.

  One row per symbol and session, TA-Lib conventions (see _marts__models.yml). Recursive indicators use
  the ewm_* macros: block-anchored window sums, exact to machine precision.

  Incremental runs rebuild each symbol from its earliest new or changed session (restart) onward. The
  recursions restart from the state stored on the last kept row (avg_gain_14 and avg_loss_14 are kept
  for RSI, macd + ema_26 is MACD's fast EMA) and the moving windows read the 199 sessions before the
  restart; a symbol with less history, or whose kept row is missing, is rebuilt from its first session.
#}
{%- set k12, k26, k9, w14 = 2 / 13, 2 / 27, 2 / 10, 1 / 14 -%}
{%- set recursions = {'ema_12': 1 - k12, 'ema_26': 1 - k26, 'macd_fast': 1 - k12,
                      'gain': 1 - w14, 'loss': 1 - w14, 'tr': 1 - w14} -%}
{%- set carried = is_incremental() -%}
{%- set lookback = 199 -%}  {# the longest moving window (SMA 200) less one #}
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

bars as (
    select
        symbol, session_date, session_index as rn, close, volume, true_range, loaded_at,
        greatest(close - prev_close, 0) as gain,
        greatest(prev_close - close, 0) as loss
        {%- if carried %},
        restart_index, carry_rn, carry_ema_12, carry_ema_26, carry_macd_fast, carry_gain, carry_loss, carry_tr,
        carry_signal
        {%- endif %}
    from {{ 'inputs' if carried else ref('int_daily_bars_enriched') }}
),

windows as (
    select
        *,
        rn / {{ var('ewm_block') }} as blk,
        {{ running_sum('close') }} as cum_close,  -- moving sums are differences of running sums (see sma())
        {{ running_sum('volume') }} as cum_volume,
        {{ stddev_pop_n('close', 20) }} as close_std_20,
        {{ stddev_pop_n('volume', 20) }} as volume_std_20,
        -- seeds: the SMA of each recursion's first n inputs (TA-Lib compatibility mode); TA-Lib's MACD
        -- seeds its fast EMA where the slow one starts (row 25), with the 12 closes ending there
        {{ seed('close', 0, 11) }} as seed_ema_12,
        {{ seed('close', 0, 25) }} as seed_ema_26,
        {{ seed('close', 14, 25) }} as seed_macd_fast,
        {{ seed('gain', 1, 14) }} as seed_gain,
        {{ seed('loss', 1, 14) }} as seed_loss,
        {{ seed('true_range', 1, 14) }} as seed_tr
    from bars
),

contributions as (
    select
        *,
        {{ sma('cum_close', 20) }} as sma_20,
        {{ sma('cum_close', 50) }} as sma_50,
        {{ sma('cum_close', 200) }} as sma_200,
        {{ sma('cum_volume', 20) }} as volume_avg_20,  -- exact: volumes are whole shares
        {{ ewm_anchor(ewm_input('close', k12, 11, 'seed_ema_12', carried and 'carry_ema_12'), recursions['ema_12']) }} as v_ema_12,
        {{ ewm_anchor(ewm_input('close', k26, 25, 'seed_ema_26', carried and 'carry_ema_26'), recursions['ema_26']) }} as v_ema_26,
        {{ ewm_anchor(ewm_input('close', k12, 25, 'seed_macd_fast', carried and 'carry_macd_fast'), recursions['macd_fast']) }} as v_macd_fast,
        {{ ewm_anchor(ewm_input('gain', w14, 14, 'seed_gain', carried and 'carry_gain'), recursions['gain']) }} as v_gain,
        {{ ewm_anchor(ewm_input('loss', w14, 14, 'seed_loss', carried and 'carry_loss'), recursions['loss']) }} as v_loss,
        {{ ewm_anchor(ewm_input('true_range', w14, 14, 'seed_tr', carried and 'carry_tr'), recursions['tr']) }} as v_tr
    from windows
    window by_symbol as (partition by symbol order by rn)
),

block_sums as (
    select
        *,
        {%- for name in recursions %}
        {{ ewm_block_sum('v_' ~ name) }} as s_{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from contributions
    {%- if carried %}
    where rn >= coalesce(carry_rn, 0)  -- rows before the carried state only fed the moving windows
    {%- endif %}
    window {{ ewm_windows() }}
),

smoothed as (
    select
        *,
        case when rn >= 11 then {{ ewm_value('s_ema_12', recursions['ema_12']) }} end as ema_12,
        case when rn >= 25 then {{ ewm_value('s_ema_26', recursions['ema_26']) }} end as ema_26,
        case when rn >= 25 then {{ ewm_value('s_macd_fast', recursions['macd_fast']) }} end as macd_fast,
        case when rn >= 14 then {{ ewm_value('s_gain', recursions['gain']) }} end as avg_gain_14,
        case when rn >= 14 then {{ ewm_value('s_loss', recursions['loss']) }} end as avg_loss_14,
        case when rn >= 14 then {{ ewm_value('s_tr', recursions['tr']) }} end as atr_14
    from block_sums
    window {{ ewm_windows() }}
),

macd_line as (
    select
        *,
        macd_fast - ema_26 as macd_raw,
        {{ seed('macd_fast - ema_26', 25, 33) }} as seed_signal
    from smoothed
),

signal_sums as (
    select
        *,
        {{ ewm_block_sum(ewm_anchor(ewm_input('macd_raw', k9, 33, 'seed_signal', carried and 'carry_signal'), 1 - k9)) }}
            as s_signal
    from macd_line
    window {{ ewm_windows() }}
),

signal as (
    select
        *,
        case when rn >= 33 then {{ ewm_value('s_signal', 1 - k9) }} end as macd_signal
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
    (volume - volume_avg_20) / nullif(volume_std_20, 0) as volume_zscore_20,
    avg_gain_14,
    avg_loss_14,
    loaded_at
from signal
{%- if carried %}
where rn >= restart_index
{%- endif %}
