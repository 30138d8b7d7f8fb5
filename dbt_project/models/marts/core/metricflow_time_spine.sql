-- MetricFlow's day spine: the calendar of dim_date, one row per day.
select date_day
from {{ ref('dim_date') }}
