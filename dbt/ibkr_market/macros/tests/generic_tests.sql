{# Generic data tests (dbt_utils is not installable offline, so the few we need live here). #}

{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test positive(model, column_name) %}
select * from {{ model }} where {{ column_name }} <= 0 or {{ column_name }} = 'NaN'::double precision
{% endtest %}

{% test non_negative(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0 or {{ column_name }} = 'NaN'::double precision
{% endtest %}

{% test ohlc_consistent(model) %}
-- high must bound open/close/low from above and low from below (IBKR bars, any source)
select symbol, session_date, open, high, low, close
from {{ model }}
where high < greatest(open, close) or low > least(open, close) or high < low
{% endtest %}

{% test between(model, column_name, min_value, max_value) %}
select * from {{ model }}
where {{ column_name }} is not null and ({{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }})
{% endtest %}
