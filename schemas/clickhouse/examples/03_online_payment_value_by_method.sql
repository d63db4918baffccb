-- Online payment value and count by method over the last 30 days.
SELECT method, sum(paid_online) AS payments, sum(paid_online_vnd) AS value_vnd
FROM payment_daily
WHERE day > toDate(toTimeZone(now(), 'Asia/Ho_Chi_Minh')) - 30
GROUP BY method
ORDER BY value_vnd DESC
