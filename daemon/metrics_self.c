/* SPDX-License-Identifier: MIT */
/*
 * The daemon's own health as samples: the process_* families every
 * Prometheus client exports (CPU time, resident and virtual memory, open and
 * allowed file descriptors, start time: /proc/self/stat, /proc/self/fd,
 * /proc/self/limits) and the database's size on disk with its WAL.
 *
 * Called by metrics_render.c once per scrape, outside the metrics' lock:
 * a few small /proc reads and two stat calls (the fd directory is listed,
 * at most a few hundred entries for a daemon with its connection cap).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics_internal.h"

#define P pd_out_printf

/* The "# HELP" and "# TYPE" lines of a family (a counter without _total in OpenMetrics). */
static void head(struct pd_out *o, bool om, const char *name, const char *type, const char *help)
{
	size_t n = strlen(name);

	if (om && !strcmp(type, "counter") && n > 6 && !strcmp(name + n - 6, "_total"))
		n -= 6;
	P(o, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, name, help, (int)n, name, type);
}

struct self_stat {
	double cpu_s, start_s;
	unsigned long long vsize, rss_pages;
};

/* utime, stime, starttime, vsize and rss of /proc/self/stat (fields 14, 15, 22, 23, 24). */
static int read_stat(struct self_stat *s)
{
	char buf[1024], *p;
	unsigned long long ut, st, start;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* the comm may hold spaces and parentheses: the fields follow the last ')' */
	if (!(p = strrchr(buf, ')')) || tick <= 0)
		return -EINVAL;
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
		   "%*d %llu %llu %llu",
		   &ut, &st, &start, &s->vsize, &s->rss_pages) != 5)
		return -EINVAL;
	s->cpu_s = (double)(ut + st) / (double)tick;
	s->start_s = (double)start / (double)tick;
	return 0;
}

/* Seconds since 1970 of the boot (btime of /proc/stat), -1 if unknown. */
static double boot_time_s(void)
{
	char line[256];
	double v = -1;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6)) {
			v = strtod(line + 6, NULL);
			break;
		}
	fclose(f);
	return v;
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* The soft "Max open files" of /proc/self/limits, -1 if unknown or unlimited. */
static long max_fds(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/limits", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Max open files", 14)) {
			char *end;

			v = strtol(line + 14, &end, 10);
			if (end == line + 14)
				v = -1;
			break;
		}
	fclose(f);
	return v;
}

static void process_samples(struct pd_out *o, bool om)
{
	struct self_stat s;
	double boot = boot_time_s();
	long fds = count_fds(), maxfd = max_fds();

	if (read_stat(&s))
		return;
	head(o, om, "process_cpu_seconds_total", "counter",
	     "Total user and system CPU time spent in seconds.");
	P(o, "process_cpu_seconds_total %.3f\n", s.cpu_s);
	head(o, om, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	P(o, "process_resident_memory_bytes %llu\n",
	  s.rss_pages * (unsigned long long)getpagesize());
	head(o, om, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	P(o, "process_virtual_memory_bytes %llu\n", s.vsize);
	if (boot >= 0) {
		head(o, om, "process_start_time_seconds", "gauge",
		     "Start time of the process since unix epoch in seconds.");
		P(o, "process_start_time_seconds %.2f\n", boot + s.start_s);
	}
	if (fds >= 0) {
		head(o, om, "process_open_fds", "gauge", "Number of open file descriptors.");
		P(o, "process_open_fds %ld\n", fds);
	}
	if (maxfd >= 0) {
		head(o, om, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		P(o, "process_max_fds %ld\n", maxfd);
	}
}

/* The database file and its write-ahead log, bytes on disk (0: absent). */
static void database_samples(struct pd_out *o, bool om, const char *db)
{
	static const char *const suffix[] = {"", "-wal"};
	static const char *const file[] = {"db", "wal"};
	char path[4096];
	struct stat sb;

	if (!db || !db[0])
		return;
	head(o, om, "ptescope_database_bytes", "gauge",
	     "Size of the SQLite database (file=\"db\") and its write-ahead log (\"wal\").");
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		P(o, "ptescope_database_bytes{file=\"%s\"} %lld\n", file[i],
		  stat(path, &sb) ? 0LL : (long long)sb.st_size);
	}
}

void pd_metrics_self(struct pd_out *o, const char *db_path, bool openmetrics)
{
	process_samples(o, openmetrics);
	database_samples(o, openmetrics, db_path);
}
