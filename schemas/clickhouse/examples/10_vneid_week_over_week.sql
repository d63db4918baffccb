-- VNeID linkage by authority, this week against last week (weeks start on Monday).
SELECT authority_code,
       round(sumIf(vneid_verified, day >= toMonday(today_vn)) / sumIf(dossiers, day >= toMonday(today_vn)), 4) AS this_week,
       round(sumIf(vneid_verified, day < toMonday(today_vn)) / sumIf(dossiers, day < toMonday(today_vn)), 4) AS last_week
FROM dossier_daily
CROSS JOIN (SELECT toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) AS today_vn) AS t
WHERE day >= toMonday(today_vn) - 7
GROUP BY authority_code
ORDER BY authority_code
