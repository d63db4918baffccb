-- Today's full-online share by province (Vietnam's calendar day).
SELECT authority_code, sum(full_online) AS total_full_online, sum(dossiers) AS total_dossiers,
       round(sum(full_online) / sum(dossiers), 4) AS full_online_share
FROM dossier_daily
WHERE day = toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) AND authority_kind = 'province'
GROUP BY authority_code
ORDER BY full_online_share DESC
