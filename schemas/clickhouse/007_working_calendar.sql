-- Vietnam's working-day calendar for state agencies, one row per day from
-- 2022-01-01 through the last year of schemas/reference/vn-days-off.csv.
-- The migrate step fills it after the migrations (and refills it, swapping a
-- whole new table in, when the file changes); never written by hand.
--
-- working:     1 on a working day (Monday-Friday not off, or a Saturday
--              worked in exchange for a day off)
-- ordinal:     working days from 2022-01-01 through this day; the working days
--              after day a up to and including day b are b's ordinal minus a's
-- kind:        workday | weekend | holiday | compensating | swapped_off |
--              makeup_workday
-- holiday:     new_year | tet | hung_kings | victory | labour | national_day,
--              or '' (for a swap, the break it lengthens)
-- name:        the holiday's Vietnamese name, or ''
-- provisional: 1 for a year the Government has not announced yet (only the
--              dates the Labour Code fixes are days off)
CREATE TABLE IF NOT EXISTS working_calendar
(
    day Date,
    working UInt8,
    ordinal UInt32,
    kind String,
    holiday String,
    name String,
    provisional UInt8
)
ENGINE = MergeTree()
ORDER BY day;
