-- Ministries against provinces on every dossier rate, for a chosen range.
SELECT authority_kind,
       sum(dossiers) AS total_dossiers,
       round(sum(full_online) / sum(dossiers), 4) AS full_online_share,
       round(sum(online) / sum(dossiers), 4) AS online_share,
       round(sum(closed_on_time) / sum(closed_with_due), 4) AS on_time_rate,
       round(sum(digitized) / sum(dossiers), 4) AS digitization_rate,
       round(sum(resolved_result_digitized) / sum(resolved), 4) AS result_digitization_rate,
       round(sum(vneid_verified) / sum(dossiers), 4) AS vneid_rate,
       round(sum(with_fee_paid_online) / sum(with_fee), 4) AS online_payment_rate
FROM dossier_daily
WHERE day BETWEEN toDate('2024-07-01') AND toDate('2024-07-03')
GROUP BY authority_kind
ORDER BY authority_kind
