-- The 10 agencies with the worst on-time rate this month (at least 20 closed dossiers with a due date).
SELECT agency_code, sum(closed_on_time) AS on_time, sum(closed_with_due) AS closed,
       round(sum(closed_on_time) / sum(closed_with_due), 4) AS on_time_rate
FROM dossier_daily
WHERE day >= toStartOfMonth(toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')))
GROUP BY agency_code
HAVING closed >= 20
ORDER BY on_time_rate ASC, agency_code
LIMIT 10
