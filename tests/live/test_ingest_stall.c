/* SPDX-License-Identifier: MIT */
/*
 * The capture thread never waits on /proc (daemon/ingest.c, procmem.c): a few
 * processes with 64000 VMAs each fork in a loop (every fork holds the
 * parent's mmap lock while dup_mmap copies the VMAs, and reading its
 * /proc/PID/maps waits for each one), and live forks of theirs are handed to
 * ingest as the capture thread hands them. Each hand-over must return at
 * once (under 50 ms: it used to read maps right there, 0.9 s measured), and
 * every fork must be stored, with the parent's memory absent or right (a
 * VMA count, when stored, is the whole count, never a truncated one).
 *
 * Uses this machine's real /proc; needs no privileges. Scratch dir: argv[1].
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "log.h"
#include "check.h"
#include "util.h"

#define HOGS 3
#define HOG_VMAS 64000
#define CALLS 12
#define MAX_CALL_NS (50 * 1000000ull)

/* A process with HOG_VMAS VMAs forking in a loop until killed; writes a byte to @ready first. */
static void hog(int ready)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)page * HOG_VMAS;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	prctl(PR_SET_NAME, "vmahog");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (p == MAP_FAILED)
		_exit(1);
	/* every other page read-only: one VMA per page */
	for (size_t i = 0; i < HOG_VMAS; i += 2)
		if (mprotect(p + i * (size_t)page, (size_t)page, PROT_READ))
			_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;) {
		pid_t c = fork();

		if (c == 0)
			_exit(0);
		if (c > 0)
			waitpid(c, NULL, 0);
	}
}

static int64_t query_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	struct pd_ingest_opts o = {0};
	struct pd_ingest *in = NULL;
	struct pt_input_stats st;
	pid_t hogs[HOGS];
	uint64_t worst = 0, sum = 0;
	char db[512], err[512];
	int pfd[2];

	pd_log_set_level(PD_LOG_ERR);
	mkdir(dir, 0755);
	snprintf(db, sizeof(db), "%s/stall.db", dir);
	unlink(db);
	if (pipe(pfd))
		return 1;
	for (int i = 0; i < HOGS; i++) {
		hogs[i] = fork();
		if (hogs[i] == 0)
			hog(pfd[1]);
	}
	for (int i = 0; i < HOGS; i++) {
		char c;

		if (read(pfd[0], &c, 1) != 1) {
			fprintf(stderr, "a hog did not start (vm.max_map_count below %d?)\n",
				HOG_VMAS);
			return 77;
		}
	}
	o.db_path = db;
	CHECK_EQ(pd_ingest_open(&o, &in, err, sizeof(err)), 0);
	if (!in) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	CHECK_EQ(pd_ingest_live_begin(in, "test", 0, err, sizeof(err)), 0);
	for (int i = 0; i < CALLS; i++) {
		struct pt_fork f;
		uint64_t t0, dt;

		memset(&f, 0, sizeof(f));
		f.parent_pid = hogs[i % HOGS];
		snprintf(f.parent_comm, sizeof(f.parent_comm), "vmahog");
		f.child_pid = -1;
		f.ts_ns = pt_mono_ns();
		f.kernel_clone_ns = f.copy_process_ns = f.dup_mmap_ns = f.copy_page_range_ns =
		    PT_NO_TIME;
		f.max_lock_hold_ns = f.copy_offcpu_ns = PT_NO_TIME;
		f.vmas = f.pte_passes = f.lock_breaks = f.ptes = f.copy_resched = PT_NULL;
		f.complete = true;
		t0 = pt_mono_ns();
		CHECK_EQ(pd_ingest_live_fork(&f, in), 0);
		dt = pt_mono_ns() - t0;
		sum += dt;
		worst = dt > worst ? dt : worst;
		/* a pid's reading is reused for a second: space them so each is read */
		usleep(1100000 / HOGS);
	}
	printf(
	    "hand-over of %d live forks of %d-VMA forking parents: worst %.1f ms, mean %.1f ms\n",
	    CALLS, HOG_VMAS, worst / 1e6, sum / 1e6 / CALLS);
	CHECK(worst < MAX_CALL_NS);
	pt_input_stats_init(&st);
	CHECK_EQ(pd_ingest_live_end(in, &st, err, sizeof(err)), 0);
	CHECK_EQ(pd_ingest_close(in, err, sizeof(err)), 0);
	for (int i = 0; i < HOGS; i++) {
		kill(hogs[i], SIGKILL);
		waitpid(hogs[i], NULL, 0);
	}
	CHECK_EQ(query_int(db, "SELECT count(*) FROM fork"), CALLS);
	/* absent or whole: never a count cut short */
	CHECK_EQ(query_int(db, "SELECT count(*) FROM fork WHERE mem_map_count IS NOT NULL"
			       " AND mem_map_count < 64000"),
		 0);
	printf(
	    "stored %lld forks, %lld with the parent's memory, %lld with its VMA count\n",
	    (long long)query_int(db, "SELECT count(*) FROM fork"),
	    (long long)query_int(db, "SELECT count(*) FROM fork WHERE mem_rss_anon_bytes"
				     " IS NOT NULL"),
	    (long long)query_int(db, "SELECT count(*) FROM fork WHERE mem_map_count IS NOT NULL"));
	TEST_DONE();
}
