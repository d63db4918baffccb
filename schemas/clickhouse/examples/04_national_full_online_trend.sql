-- The national full-online share, day by day, over the last 30 days.
SELECT day, sum(full_online) AS total_full_online, sum(dossiers) AS total_dossiers,
       round(sum(full_online) / sum(dossiers), 4) AS full_online_share
FROM dossier_daily
WHERE day > toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) - 30
GROUP BY day
ORDER BY day
