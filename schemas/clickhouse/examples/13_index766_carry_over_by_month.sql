-- Decision 766 month by month, nationally: dossiers handled (H) against
-- those received (R); the difference is what each month carried over from
-- earlier ones, still open at its start, and what weighs on its on-time
-- processing (2.1).
SELECT
    period_start AS month,
    sum(handled) AS dossiers_handled,
    sum(received) AS dossiers_received,
    sum(handled) - sum(received) AS carried_over,
    sum(open) AS open_at_month_end,
    round(sum(on_time) / sum(handled), 4) AS on_time_2_1
FROM index766_counts
WHERE period_kind = 'month'
GROUP BY period_start
ORDER BY period_start
SETTINGS enable_optimize_predicate_expression = 0
