-- Decision 766, this month so far (provisional: open dossiers are judged
-- now): the dossier indicators of every province from index766_counts, worst
-- on-time processing first. 2.1 on time, 4.1 electronic results, 4.2
-- digitized and 5.4 satisfied are shares of the dossiers handled (H: received
-- this month or still open from before); 3.3 filed online is a share of those
-- received (R). The API adds the catalogue's and the petitions' indicators and
-- the points (GET /v1/index766). The setting keeps ClickHouse 18.16 from
-- pushing the filter into the view's aggregation, which it cannot do.
SELECT
    authority_code,
    sum(handled) AS dossiers_handled,
    sum(received) AS dossiers_received,
    round(sum(on_time) / sum(handled), 4) AS on_time_2_1,
    round(sum(received_online) / greatest(sum(received), 1), 4) AS online_3_3,
    round(sum(result_digitized) / sum(handled), 4) AS electronic_result_4_1,
    round(sum(digitized_complete) / sum(handled), 4) AS digitized_4_2,
    round(sum(satisfied) / sum(handled), 4) AS satisfied_5_4
FROM index766_counts
WHERE period_kind = 'month'
  AND period_start = toStartOfMonth(toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')))
  AND substring(authority_code, 1, 1) = 'H'
GROUP BY authority_code
ORDER BY on_time_2_1, authority_code
SETTINGS enable_optimize_predicate_expression = 0
