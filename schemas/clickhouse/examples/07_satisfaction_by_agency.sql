-- Satisfaction by agency over the last 90 days, with the rating counts behind it.
SELECT agency_code, sum(ratings) AS total_ratings, sum(satisfied) AS total_satisfied, sum(neutral) AS total_neutral,
       sum(unsatisfied) AS total_unsatisfied, round(sum(satisfied) / sum(ratings), 4) AS satisfaction_rate
FROM rating_daily
WHERE day > toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) - 90
GROUP BY agency_code
ORDER BY satisfaction_rate ASC, agency_code
