-- The 20 procedures with the most dossiers this month, and how many were filed online.
SELECT procedure_code, sum(dossiers) AS total_dossiers, round(sum(online) / sum(dossiers), 4) AS online_share
FROM dossier_daily
WHERE day >= toStartOfMonth(toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')))
GROUP BY procedure_code
ORDER BY total_dossiers DESC, procedure_code
LIMIT 20
