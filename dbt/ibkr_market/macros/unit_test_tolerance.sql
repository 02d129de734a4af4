{#
  dbt compares unit-test results exactly (it has no float tolerance: dbt-core#10470), while the indicators'
  recursions land within a few ulps of the hand-computed values. This override of dbt's unit-test query
  rounds double-precision columns, actual and expected alike, to 8 decimals before the comparison.
#}
{% macro postgres__get_unit_test_sql(main_sql, expected_fixture_sql, expected_column_names) -%}
    {%- set float_columns = [] -%}
    {%- if execute -%}
        {%- for column in get_column_schema_from_query(main_sql) -%}
            {%- if column.dtype | lower in ('float', 'double precision', 'float8', 'real') -%}
                {%- do float_columns.append(column.name | lower) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set compared = [] -%}
    {%- for name in expected_column_names -%}
        {%- if name | lower | replace('"', '') in float_columns -%}
            {%- do compared.append('round(' ~ name ~ '::numeric, 8) as ' ~ name) -%}
        {%- else -%}
            {%- do compared.append(name) -%}
        {%- endif -%}
    {%- endfor %}
with dbt_internal_unit_test_actual as (
    select {{ compared | join(', ') }}, {{ dbt.string_literal("actual") }} as {{ adapter.quote("actual_or_expected") }}
    from ({{ main_sql }}) _dbt_internal_unit_test_actual
),
dbt_internal_unit_test_expected as (
    select {{ compared | join(', ') }}, {{ dbt.string_literal("expected") }} as {{ adapter.quote("actual_or_expected") }}
    from ({{ expected_fixture_sql }}) _dbt_internal_unit_test_expected
)
select * from dbt_internal_unit_test_actual
union all
select * from dbt_internal_unit_test_expected
{%- endmacro %}
