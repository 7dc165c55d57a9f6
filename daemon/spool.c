/* SPDX-License-Identifier: MIT */
/*
 * The upload spool (spool.h): durable hand-over of accepted uploads from the
 * HTTP layer to the replay worker, across kill -9 and restarts.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TMP_PREFIX "ptescoped-upload-" /* where versions before the spool put uploads */

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* Removes the regular files of @dir whose names start with @prefix, owned by us. */
static void remove_leftovers(const char *dir, const char *prefix, const char *what)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;

		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
		    lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (!unlink(path))
			pd_info("removed %s %s (%lld bytes)", what, path, (long long)st.st_size);
	}
	closedir(d);
}

int pd_spool_init(const char *dir, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "upload spool %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "upload spool %s: not a directory", dir);
		return -ENOTDIR;
	}
	remove_leftovers(dir, ".partial-", "an upload never acknowledged,");
	remove_leftovers(tmp && tmp[0] ? tmp : "/var/tmp", TMP_PREFIX,
			 "an orphaned upload of an earlier version,");
	return 0;
}

static int write_name(const char *path, const char *name)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), ret = 0;
	size_t len = strlen(name);

	if (fd < 0)
		return -errno;
	if (write(fd, name, len) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	else if (fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (ret)
		unlink(path);
	return ret;
}

int pd_spool_commit(const char *dir, const char *partial, const char *name, char *out,
		    size_t outlen, char *err, size_t errlen)
{
	static atomic_uint seq;
	char name_path[4200];
	struct timespec ts;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (snprintf(out, outlen, "%s/job-%019lld-%06u.trace", dir,
		     (long long)ts.tv_sec * 1000000000 + ts.tv_nsec,
		     atomic_fetch_add(&seq, 1) % 1000000) >= (int)outlen ||
	    snprintf(name_path, sizeof(name_path), "%s.name", out) >= (int)sizeof(name_path)) {
		snprintf(err, errlen, "upload spool %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	ret = write_name(name_path, name);
	if (!ret && rename(partial, out))
		ret = -errno;
	if (!ret)
		ret = fsync_path(dir, O_DIRECTORY);
	if (ret) {
		unlink(name_path);
		snprintf(err, errlen, "cannot spool the upload in %s: %s", dir, strerror(-ret));
	}
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_job(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return !strncmp(de->d_name, "job-", 4) && n > 6 && !strcmp(de->d_name + n - 6, ".trace");
}

/* The display name of job @path ("upload" when its name file is missing). */
static void read_name(const char *path, char *name, size_t len)
{
	char np[4200];
	ssize_t n = -1;
	int fd;

	snprintf(np, sizeof(np), "%s.name", path);
	fd = open(np, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		n = read(fd, name, len - 1);
		close(fd);
	}
	if (n <= 0)
		snprintf(name, len, "upload");
	else
		name[n] = 0;
}

int pd_spool_each(const char *dir, int (*fn)(const char *path, const char *name, void *ctx),
		  void *ctx)
{
	struct dirent **list;
	int n = scandir(dir, &list, is_job, by_name), done = 0;

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char path[4096], name[256];

		if (snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name) <
		    (int)sizeof(path)) {
			read_name(path, name, sizeof(name));
			if (!fn(path, name, ctx))
				done++;
		}
		free(list[i]);
	}
	free(list);
	return done;
}

void pd_spool_remove(const char *path)
{
	char np[4200];

	unlink(path);
	if (snprintf(np, sizeof(np), "%s.name", path) < (int)sizeof(np))
		unlink(np);
}
