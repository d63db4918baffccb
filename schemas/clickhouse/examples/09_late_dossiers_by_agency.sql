-- Dossiers closed after their due date, by agency, last 30 days.
SELECT agency_code, sum(closed_with_due) - sum(closed_on_time) AS closed_late, sum(closed_with_due) AS closed
FROM dossier_daily
WHERE day > toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) - 30
GROUP BY agency_code
ORDER BY closed_late DESC, agency_code
