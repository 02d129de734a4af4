{{ config(
    materialized='table',
    pre_hook="set work_mem = '256MB'",
    post_hook="reset work_mem",
) }}
{#
  One row per symbol and session, TA-Lib conventions (see _marts__models.yml). Recursive
  indicators use the ewm_* macros: block-anchored window sums, exact to machine precision.
#}
{%- set k12, k26, k9, w14 = 2 / 13, 2 / 27, 2 / 10, 1 / 14 -%}
{%- set recursions = {'ema_12': 1 - k12, 'ema_26': 1 - k26, 'macd_fast': 1 - k12,
                      'gain': 1 - w14, 'loss': 1 - w14, 'tr': 1 - w14} -%}
with bars as (
    select
        symbol, session_date, close, volume, true_range,
        greatest(close - prev_close, 0) as gain,
        greatest(prev_close - close, 0) as loss,
        row_number() over (partition by symbol order by session_date) - 1 as rn
    from {{ ref('int_daily_bars_enriched') }}
),

windows as (
    select
        *,
        rn / {{ var('ewm_block') }} as blk,
        {{ sma('close', 20) }} as sma_20,
        {{ sma('close', 50) }} as sma_50,
        {{ sma('close', 200) }} as sma_200,
        {{ stddev_pop_n('close', 20) }} as close_std_20,
        case when rn >= 19 then avg(volume) over (partition by symbol order by rn rows between 19 preceding
            and current row) end as volume_avg_20,  -- same frame as its stddev: the z-score's mean
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
        {{ ewm_anchor("case when rn = 11 then seed_ema_12 when rn > 11 then " ~ k12 ~ "::float8 * close else 0 end", recursions['ema_12']) }} as v_ema_12,
        {{ ewm_anchor("case when rn = 25 then seed_ema_26 when rn > 25 then " ~ k26 ~ "::float8 * close else 0 end", recursions['ema_26']) }} as v_ema_26,
        {{ ewm_anchor("case when rn = 25 then seed_macd_fast when rn > 25 then " ~ k12 ~ "::float8 * close else 0 end", recursions['macd_fast']) }} as v_macd_fast,
        {{ ewm_anchor("case when rn = 14 then seed_gain when rn > 14 then " ~ w14 ~ "::float8 * gain else 0 end", recursions['gain']) }} as v_gain,
        {{ ewm_anchor("case when rn = 14 then seed_loss when rn > 14 then " ~ w14 ~ "::float8 * loss else 0 end", recursions['loss']) }} as v_loss,
        {{ ewm_anchor("case when rn = 14 then seed_tr when rn > 14 then " ~ w14 ~ "::float8 * true_range else 0 end", recursions['tr']) }} as v_tr
    from windows
),

block_sums as (
    select
        *,
        {%- for name in recursions %}
        {{ ewm_block_sum('v_' ~ name) }} as s_{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from contributions
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
        symbol, session_date, rn, blk, close, volume, sma_20, sma_50, sma_200, close_std_20, volume_avg_20,
        volume_std_20, ema_12, ema_26, avg_gain_14, avg_loss_14, atr_14,
        macd_fast - ema_26 as macd_raw,
        {{ seed('macd_fast - ema_26', 25, 33) }} as seed_signal
    from smoothed
),

signal_contributions as (
    select
        *,
        {{ ewm_anchor("case when rn = 33 then seed_signal when rn > 33 then " ~ k9 ~ "::float8 * macd_raw else 0 end", 1 - k9) }}
            as v_signal
    from macd_line
),

signal_sums as (
    select *, {{ ewm_block_sum('v_signal') }} as s_signal
    from signal_contributions
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
    (volume - volume_avg_20) / nullif(volume_std_20, 0) as volume_zscore_20
from signal
