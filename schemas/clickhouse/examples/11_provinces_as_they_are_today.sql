-- Full-online share per province as the provinces are today, July 2024
-- (63 provinces) against July 2026 (34): each province's dossiers counted
-- with the unit that carries its code now (authority_successors, 008), so a
-- province merged on 1 July 2025 adds to the one it merged into.
SELECT successor_code, successor_name, year,
       sum(filed) AS total_dossiers,
       round(sum(filed_full_online) / sum(filed), 4) AS full_online_share
FROM
(
    SELECT authority_code, toYear(day) AS year,
           sum(dossiers) AS filed, sum(full_online) AS filed_full_online
    FROM dossier_daily
    WHERE authority_kind = 'province'
      AND (day BETWEEN toDate('2024-07-01') AND toDate('2024-07-31')
           OR day BETWEEN toDate('2026-07-01') AND toDate('2026-07-31'))
    GROUP BY authority_code, year
) AS by_province
ANY LEFT JOIN authority_successors USING authority_code
GROUP BY successor_code, successor_name, year
ORDER BY successor_code, year
