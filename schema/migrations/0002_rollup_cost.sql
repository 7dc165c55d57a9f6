-- 0002: exact cost per PTE over any range, from the rollups.
--
-- Rows of metric 4 (copy_page_range) carry, besides their histogram, the
-- sums over the forks they count that are complete and have both a
-- copy_page_range time and ptes > 0: the forks (cost_forks), their
-- copy_page_range time (cost_ns) and their PTEs (cost_ptes). Cost per PTE
-- over a range is sum(cost_ns) / sum(cost_ptes) over its rows. Rows of the
-- other metrics keep 0. Kept in step with the forks like the histograms
-- (store.c: inserts add, purges and retention subtract, same transaction).
ALTER TABLE rollup ADD COLUMN cost_forks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup ADD COLUMN cost_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup ADD COLUMN cost_ptes INTEGER NOT NULL DEFAULT 0;

-- Backfill from the forks. A fork rolls up into the group named after its
-- parent comm ("" when unknown), or group 0 ("other") when that comm has no
-- group; t is wall_ns / 60e9, / 3600e9, / 86400e9 (integer division, as
-- store.c). Every such fork already has its metric-4 row (a histogram row
-- exists for every fork, nulls included), so an UPDATE is enough.
WITH c AS (
	SELECT f.wall_ns AS w, coalesce(g.id, 0) AS grp, f.copy_page_range_ns AS ns,
	       f.ptes AS ptes
	FROM fork f LEFT JOIN comm_group g ON g.name = coalesce(f.parent_comm, '')
	WHERE f.complete AND f.copy_page_range_ns IS NOT NULL AND f.ptes > 0
), sums AS (
	SELECT 0 AS res, w / 60000000000 AS t, grp, count(*) AS n, sum(ns) AS ns,
	       sum(ptes) AS ptes FROM c GROUP BY 2, 3
	UNION ALL
	SELECT 1, w / 3600000000000, grp, count(*), sum(ns), sum(ptes) FROM c GROUP BY 2, 3
	UNION ALL
	SELECT 2, w / 86400000000000, grp, count(*), sum(ns), sum(ptes) FROM c GROUP BY 2, 3
)
UPDATE rollup SET cost_forks = sums.n, cost_ns = sums.ns, cost_ptes = sums.ptes
FROM sums
WHERE rollup.metric = 4 AND rollup.res = sums.res AND rollup.t = sums.t
      AND rollup.grp = sums.grp;
