-- The Decision 766 index in batches of its own (README.md, "The index
-- rollup"). Until 011 dvc-rollup wrote the index's rows in the rates'
-- batches, and at 10 k new dossiers a second the index's part was most of
-- each batch: the rates' rollup fell behind, and with it every figure's
-- freshness (bench/README.md, "Freshness"). From 012 the index walks
-- `touches` on its own, after the rates and allowed to lag them (its periods
-- are a month or longer), and records how far it has read here.
--
-- Each row is one index batch's progress: `progress` is the same JSON as
-- rate_rollup's progress rows ({"from":…,"to":…,"cursor":…,"pending":…});
-- the latest batch is the one that counts, and merges keep only it. The
-- row is written after the batch's index rows: after a crash between the
-- two the batch runs again and finds its rows already counted.
CREATE TABLE IF NOT EXISTS index766_progress
(
    batch UInt64,
    progress String
)
ENGINE = ReplacingMergeTree(batch)
ORDER BY tuple();

-- Until now the index was written in the rates' batches: it has read as far
-- as they have.
INSERT INTO index766_progress
SELECT batch, id FROM rate_rollup WHERE kind = 'progress' AND published > 0 ORDER BY batch DESC LIMIT 1;
