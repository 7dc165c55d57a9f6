/* SPDX-License-Identifier: MIT */
/*
 * The upload spool (spool.h): durable hand-over of accepted uploads from the
 * HTTP layer to the replay worker, across kill -9 and restarts, within
 * bounds of files and bytes.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TMP_PREFIX "ptescoped-upload-" /* where versions before the spool put uploads */
#define DEFAULT_MAX_BYTES (1ull << 30)
#define DEFAULT_MAX_FILES 64

struct pd_spool {
	char dir[4096];
	pthread_mutex_t lock;
	unsigned files, max_files; /* jobs + uploads being received */
	uint64_t bytes, max_bytes;
};

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

/*
 * @dir as a spool: created (0700) if missing, else a directory (not a
 * symlink) owned by us with no group or other access. 0 or -errno with @err.
 */
static int check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st, fst;
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "upload spool %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (lstat(dir, &st)) {
		snprintf(err, errlen, "upload spool %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "upload spool %s: %s, not a directory; remove it", dir,
			 S_ISLNK(st.st_mode) ? "a symlink" : "a file");
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 0077)) {
		snprintf(
		    err, errlen,
		    "upload spool %s: owned by uid %u with mode %04o; it must be ours (uid %u) "
		    "with mode 0700, so that nobody else can plant a job in it: fix or remove it",
		    dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		return -EPERM;
	}
	/* the same directory as checked, not one swapped in meanwhile */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &fst) || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "upload spool %s: changed while it was checked", dir);
		return -EAGAIN;
	}
	close(fd);
	return 0;
}

static int is_job(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return !strncmp(de->d_name, "job-", 4) && n > 6 && !strcmp(de->d_name + n - 6, ".trace");
}

/* Whether @path is a job file we may replay: a regular file of ours. Sets *size. */
static int job_ok(const char *path, uint64_t *size)
{
	struct stat st;

	if (lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return 0;
	*size = (uint64_t)st.st_size;
	return 1;
}

/* Counts the jobs already in the spool (left by the last run). */
static void count_jobs(struct pd_spool *sp)
{
	DIR *d = opendir(sp->dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4200];
		uint64_t size;

		if (is_job(de) &&
		    snprintf(path, sizeof(path), "%s/%s", sp->dir, de->d_name) <
			(int)sizeof(path) &&
		    job_ok(path, &size)) {
			sp->files++;
			sp->bytes += size;
		}
	}
	closedir(d);
}

int pd_spool_open(const char *dir, const struct pd_spool_limits *lim, struct pd_spool **out,
		  char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	struct pd_spool *sp;
	int ret;

	*out = NULL;
	if (strlen(dir) >= sizeof(sp->dir) - 64) {
		snprintf(err, errlen, "upload spool %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	ret = check_dir(dir, err, errlen);
	if (ret)
		return ret;
	sp = calloc(1, sizeof(*sp));
	if (!sp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
	pthread_mutex_init(&sp->lock, NULL);
	sp->max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEFAULT_MAX_BYTES;
	sp->max_files = lim && lim->max_files ? lim->max_files : DEFAULT_MAX_FILES;
	remove_leftovers(dir, ".partial-", "an upload never acknowledged,");
	remove_leftovers(tmp && tmp[0] ? tmp : "/var/tmp", TMP_PREFIX,
			 "an orphaned upload of an earlier version,");
	count_jobs(sp);
	*out = sp;
	return 0;
}

void pd_spool_free(struct pd_spool *sp)
{
	if (!sp)
		return;
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}

const char *pd_spool_dir(const struct pd_spool *sp)
{
	return sp->dir;
}

/* Under lock: whether @files more files and @bytes more bytes fit; the message if not. */
static int fits(struct pd_spool *sp, unsigned files, uint64_t bytes, char *err, size_t errlen)
{
	if (sp->files + files > sp->max_files) {
		snprintf(err, errlen,
			 "the upload spool holds %u uploads already (spool-max-files); try again "
			 "later",
			 sp->files);
		return -ENOSPC;
	}
	if (bytes > sp->max_bytes || sp->bytes > sp->max_bytes - bytes) {
		snprintf(err, errlen,
			 "the upload spool has room for %llu more bytes, not %llu (spool-max-mb); "
			 "try again later",
			 (unsigned long long)(sp->max_bytes - sp->bytes),
			 (unsigned long long)bytes);
		return -ENOSPC;
	}
	return 0;
}

int pd_spool_reserve(struct pd_spool *sp, uint64_t bytes, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&sp->lock);
	ret = fits(sp, 1, bytes, err, errlen);
	if (!ret) {
		sp->files++;
		sp->bytes += bytes;
	}
	pthread_mutex_unlock(&sp->lock);
	return ret;
}

int pd_spool_grow(struct pd_spool *sp, uint64_t more, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&sp->lock);
	ret = fits(sp, 0, more, err, errlen);
	if (!ret)
		sp->bytes += more;
	pthread_mutex_unlock(&sp->lock);
	return ret;
}

void pd_spool_trim(struct pd_spool *sp, uint64_t bytes)
{
	pthread_mutex_lock(&sp->lock);
	sp->bytes -= bytes < sp->bytes ? bytes : sp->bytes;
	pthread_mutex_unlock(&sp->lock);
}

void pd_spool_release(struct pd_spool *sp, uint64_t bytes)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->bytes -= bytes < sp->bytes ? bytes : sp->bytes;
	sp->files -= sp->files > 0;
	pthread_mutex_unlock(&sp->lock);
}

static int write_name(const char *path, const char *name)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600), ret = 0;
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

int pd_spool_commit(struct pd_spool *sp, const char *partial, const char *name, char *out,
		    size_t outlen, char *err, size_t errlen)
{
	static atomic_uint seq;
	char name_path[4200];
	struct timespec ts;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (snprintf(out, outlen, "%s/job-%019lld-%06u.trace", sp->dir,
		     (long long)ts.tv_sec * 1000000000 + ts.tv_nsec,
		     atomic_fetch_add(&seq, 1) % 1000000) >= (int)outlen ||
	    snprintf(name_path, sizeof(name_path), "%s.name", out) >= (int)sizeof(name_path)) {
		snprintf(err, errlen, "upload spool %s: path too long", sp->dir);
		return -ENAMETOOLONG;
	}
	ret = write_name(name_path, name);
	if (!ret && rename(partial, out))
		ret = -errno;
	if (!ret)
		ret = fsync_path(sp->dir, O_DIRECTORY);
	if (ret) {
		unlink(name_path);
		snprintf(err, errlen, "cannot spool the upload in %s: %s", sp->dir, strerror(-ret));
	}
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The display name of job @path ("upload" when its name file is missing). */
static void read_name(const char *path, char *name, size_t len)
{
	char np[4200];
	ssize_t n = -1;
	int fd;

	snprintf(np, sizeof(np), "%s.name", path);
	fd = open(np, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, name, len - 1);
		close(fd);
	}
	if (n <= 0)
		snprintf(name, len, "upload");
	else
		name[n] = 0;
}

int pd_spool_each(struct pd_spool *sp, int (*fn)(const char *path, const char *name, void *ctx),
		  void *ctx)
{
	struct dirent **list;
	int n = scandir(sp->dir, &list, is_job, by_name), done = 0;

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char path[4096], name[256];
		uint64_t size;

		if (snprintf(path, sizeof(path), "%s/%s", sp->dir, list[i]->d_name) <
		    (int)sizeof(path)) {
			if (!job_ok(path, &size)) {
				pd_warn("upload spool: %s is not a regular file of ours: skipped",
					path);
			} else {
				read_name(path, name, sizeof(name));
				done += !fn(path, name, ctx);
			}
		}
		free(list[i]);
	}
	free(list);
	return done;
}

void pd_spool_remove(struct pd_spool *sp, const char *path)
{
	char np[4200];
	struct stat st;
	uint64_t size = lstat(path, &st) ? 0 : (uint64_t)st.st_size;

	if (unlink(path) && errno == ENOENT)
		return; /* removed already: its room was given back then */
	if (snprintf(np, sizeof(np), "%s.name", path) < (int)sizeof(np))
		unlink(np);
	pd_spool_release(sp, size);
}

void pd_spool_usage(struct pd_spool *sp, unsigned *files, uint64_t *bytes, unsigned *max_files,
		    uint64_t *max_bytes)
{
	pthread_mutex_lock(&sp->lock);
	*files = sp->files;
	*bytes = sp->bytes;
	*max_files = sp->max_files;
	*max_bytes = sp->max_bytes;
	pthread_mutex_unlock(&sp->lock);
}
