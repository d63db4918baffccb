-- The directory of authorities: the names leaders read for the codes that
-- dossiers, petitions and catalogue entries carry, and the geography's
-- history. One row per unit and stretch of days, filled by the migrate step
-- from schemas/reference/authorities.csv (or a deployment's own file,
-- dvc-migrate --authorities) and swapped in whole when the file changes;
-- never written by hand.
--
-- valid_from:   first day, NULL: before any data
-- valid_to:     last day, NULL: still in being
-- successor:    the code that took over the day after valid_to (a merger),
--               on a code's last row; NULL otherwise
-- current_code, current_name: the unit that carries the code today (the
--               code itself while in being; else its successors followed)
-- A code with two rows was renamed: the second starts the day after the
-- first ends.
CREATE TABLE IF NOT EXISTS authorities
(
    authority_code String,
    kind String,
    name String,
    valid_from Nullable(Date),
    valid_to Nullable(Date),
    successor Nullable(String),
    current_code String,
    current_name String
)
ENGINE = MergeTree()
ORDER BY authority_code;

-- Every code once, with its last name and the unit in being today that
-- carries it: join figures on authority_code and group by successor_code to
-- compare a period before a merger with one after it.
CREATE VIEW IF NOT EXISTS authority_successors AS
SELECT
    authority_code,
    name,
    kind,
    valid_to AS ended,
    current_code AS successor_code,
    current_name AS successor_name
FROM authorities
WHERE valid_to IS NULL OR successor IS NOT NULL;
