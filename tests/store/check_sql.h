/* SPDX-License-Identifier: MIT */
/*
 * SQL the store's tests use to check the rollups against the fork table
 * directly (not through the store's code): the number of rollup rows whose
 * cost sums (schema 2) differ from the sums over their forks, in any
 * resolution, in either direction. 0 when the rollups are in step.
 */
#ifndef PTESCOPE_TEST_CHECK_SQL_H
#define PTESCOPE_TEST_CHECK_SQL_H

#define CHECK_COST_MISMATCH_SQL                                                                  \
	"WITH c AS (SELECT f.wall_ns AS w, coalesce(g.id, 0) AS grp,"                             \
	" f.copy_page_range_ns AS ns, f.ptes AS ptes FROM fork f LEFT JOIN comm_group g"          \
	" ON g.name = coalesce(f.parent_comm, '') WHERE f.complete"                               \
	" AND f.copy_page_range_ns IS NOT NULL AND f.ptes > 0),"                                  \
	" sums AS (SELECT 0 AS res, w / 60000000000 AS t, grp, count(*) AS n, sum(ns) AS ns,"     \
	" sum(ptes) AS ptes FROM c GROUP BY 2, 3"                                                 \
	" UNION ALL SELECT 1, w / 3600000000000, grp, count(*), sum(ns), sum(ptes)"               \
	" FROM c GROUP BY 2, 3"                                                                   \
	" UNION ALL SELECT 2, w / 86400000000000, grp, count(*), sum(ns), sum(ptes)"              \
	" FROM c GROUP BY 2, 3),"                                                                 \
	" r AS (SELECT res, t, grp, cost_forks, cost_ns, cost_ptes FROM rollup"                   \
	" WHERE metric = 4 AND (cost_forks OR cost_ns OR cost_ptes))"                             \
	" SELECT (SELECT count(*) FROM (SELECT * FROM sums EXCEPT SELECT * FROM r))"              \
	" + (SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM sums))"                   \
	" + (SELECT count(*) FROM rollup WHERE metric != 4 AND (cost_forks OR cost_ns"            \
	" OR cost_ptes))"

#endif
