{# An incremental model's high-water mark (max of `column` in {{ this }}) as a timestamptz literal. It is
   inlined rather than a subquery so the planner knows the value and uses the loaded_at index. #}
{% macro high_water_mark(column='loaded_at') -%}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set value = run_query('select max(' ~ column ~ ')::text from ' ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    '{{ value if value else "-infinity" }}'::timestamptz
{%- endmacro %}
