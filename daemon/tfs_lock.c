/* SPDX-License-Identifier: MIT */
/*
 * Host-wide flock(2) locks on a tracefs's top level and instances (tfs_lock.h).
 */
#include "tfs_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct pd_tfs_lock {
	int fd;
};

/* The lock file's path: LOCK_DIR/tracefs-DEV-INO.WHAT.lock. */
static int lock_path(const char *lock_dir, const char *tracefs_dir, const char *what, char *buf,
		     size_t len, char *err, size_t errlen)
{
	struct stat st;

	if (stat(tracefs_dir, &st)) {
		int ret = -errno;

		snprintf(err, errlen, "cannot lock %s: %s", tracefs_dir, strerror(errno));
		return ret;
	}
	if ((size_t)snprintf(buf, len, "%s/tracefs-%llx-%llx.%s.lock", lock_dir,
			     (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			     what) >= len) {
		snprintf(err, errlen, "lock directory path too long: %s", lock_dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* @dir (mode 0700) and its missing parents (0755: /run itself on a system without one). */
static int make_dir(const char *dir)
{
	char p[PATH_MAX];

	if ((size_t)snprintf(p, sizeof(p), "%s", dir) >= sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0700) && errno != EEXIST ? -errno : 0;
}

/* The pid the holder wrote into the lock file (0 when unknown). */
static int holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	return atoi(buf);
}

static void write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
		/* only the refused one's message loses the pid */
	}
}

int pd_tfs_lock_take(const char *lock_dir, const char *tracefs_dir, const char *what,
		     struct pd_tfs_lock **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct pd_tfs_lock *l;
	int fd, ret;

	*out = NULL;
	if ((ret = lock_path(lock_dir, tracefs_dir, what, path, sizeof(path), err, errlen)))
		return ret;
	if ((ret = make_dir(lock_dir))) {
		snprintf(err, errlen, "cannot create the lock directory %s: %s", lock_dir,
			 strerror(-ret));
		return ret;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the lock %s: %s", path, strerror(errno));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (ret == -EBUSY)
			snprintf(err, errlen, "the %s of %s is in use by pid %d (lock %s)",
				 !strcmp(what, "top") ? "top level" : what, tracefs_dir,
				 holder_pid(fd), path);
		else
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	if (!(l = malloc(sizeof(*l)))) {
		close(fd);
		return -ENOMEM;
	}
	write_pid(fd);
	l->fd = fd;
	*out = l;
	return 0;
}

void pd_tfs_lock_release(struct pd_tfs_lock *l)
{
	if (!l)
		return;
	/* the file stays: removing it would race with the next taker's open */
	close(l->fd);
	free(l);
}
