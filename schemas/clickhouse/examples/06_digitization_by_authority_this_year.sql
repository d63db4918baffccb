-- Dossier and result digitization by ministry or province, this year.
SELECT authority_code,
       round(sum(digitized) / sum(dossiers), 4) AS digitization_rate,
       round(sum(resolved_result_digitized) / sum(resolved), 4) AS result_digitization_rate
FROM dossier_daily
WHERE toYear(day) = toYear(toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')))
GROUP BY authority_code
ORDER BY authority_code
