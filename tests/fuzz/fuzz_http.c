/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for ptescoped's HTTP layer: each input is the raw bytes
 * one client sends on one connection (request lines, paths, query
 * parameters, headers, bodies, several pipelined requests) to a real
 * pd_http server -- daemon/http*.c compiled into this target with coverage
 * -- over a small synthetic database (one comm that is not UTF-8), with an
 * upload token, a web root holding a FIFO, and a stand-in core. The server
 * runs in libmicrohttpd's threads, so the router, the parameter parsers and
 * the store queries run as they do in the daemon.
 *
 * Looks for crashes, hangs, leaks, undefined behaviour, and any 500: client
 * data must never cause one (issue 12).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_internal.h"
#include "store.h"
#include "synth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port;

static void core_status(void *ctx, json_t *st)
{
	json_object_set_new(st, "version", json_string("fuzz"));
}

static bool core_healthy(void *ctx)
{
	return true;
}

static int core_submit(void *ctx, const char *path, const char *name, int64_t *job_id, char *err,
		       size_t errlen)
{
	unlink(path); /* ours now: nothing replays it */
	*job_id = 1;
	return 0;
}

__attribute__((noreturn)) static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, err);
	exit(1);
}

/* A database of 200 synthetic forks, every 10th from a comm that is not UTF-8. */
static void make_db(const char *db)
{
	struct store_source_info info = {.kind = STORE_SOURCE_LIVE,
					 .format = "live",
					 .size_bytes = -1,
					 .clock_offset_ns = store_now_ns()};
	struct store *s;
	char err[512];
	int64_t src;
	bool done;

	if (store_open(db, NULL, &s, err, sizeof(err)) ||
	    store_source_begin(s, &info, &src, &done, err, sizeof(err)))
		die(db, err);
	for (unsigned i = 0; i < 200; i++) {
		struct pt_fork f;

		synth_fork(&f, 7, i, 4);
		if (i % 10 == 0)
			snprintf(f.parent_comm, sizeof(f.parent_comm),
				 "\xff\xfe"
				 "bad\\");
		if (store_insert_fork(s, src, &f, NULL, err, sizeof(err)))
			die(db, err);
		synth_release(&f);
	}
	if (store_source_end(s, src, NULL, err, sizeof(err)) || store_close(s))
		die(db, err);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		die(path, strerror(errno));
}

static char dir[] = "/tmp/ptescope-fuzz-http-XXXXXX";

/* At exit: the scratch directory goes (the server may still hold the files open). */
static void remove_dir(void)
{
	static const char *const names[] = {"fuzz.db",	      "fuzz.db-wal", "fuzz.db-shm", "token",
					    "web/index.html", "web/fifo",    "web"};
	char path[160];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path))
			rmdir(path);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char db[128], tok[128], web[128], path[160];
	static struct pd_core core = {
	    .status = core_status, .healthy = core_healthy, .submit_replay = core_submit};
	struct pd_http_config cfg = {.listen = "127.0.0.1:0",
				     .threads = 2,
				     .timeout_s = 2,
				     .head_timeout_s = 2,
				     .body_timeout_s = 2,
				     .max_upload_bytes = 1 << 20};
	struct pd_metrics_opts mo = {0};
	struct pd_metrics *m;
	struct pd_http *h;
	char err[256];

	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	atexit(remove_dir);
	snprintf(db, sizeof(db), "%s/fuzz.db", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);
	snprintf(web, sizeof(web), "%s/web", dir);
	make_db(db);
	write_file(tok, "fuzz-token-0123456789abcdef\n");
	chmod(tok, 0600); /* a token file must be private */
	mkdir(web, 0700);
	snprintf(path, sizeof(path), "%s/index.html", web);
	write_file(path, "<html></html>");
	snprintf(path, sizeof(path), "%s/fifo", web);
	mkfifo(path, 0600);
	setenv("TMPDIR", dir, 1);
	cfg.db_path = db;
	cfg.token_file = tok;
	cfg.web_root = web;
	if (pd_metrics_new(&mo, &m) || pd_http_start(&cfg, &core, m, &h, err, sizeof(err)))
		die("pd_http_start", err);
	port = pd_http_port(h);
	return 0; /* the server lives as long as the process */
}

/*
 * Whether an answer in @buf (NUL-terminated) has status 500. Answers follow
 * one another: a status line, headers, an empty line, Content-Length bytes
 * of body. Only status lines count: a 404's body echoes the path, which may
 * hold "HTTP/1.x 500 " itself (libFuzzer found that one).
 */
static bool any_500(const char *buf, size_t len)
{
	size_t off = 0;

	while (off + 13 <= len && !strncmp(buf + off, "HTTP/1.", 7)) {
		const char *end = strstr(buf + off, "\r\n\r\n"), *cl;

		if (!strncmp(buf + off + 8, " 500 ", 5))
			return true;
		cl = strcasestr(buf + off, "\r\nContent-Length:");
		if (!end || !cl || cl > end)
			break;
		off = (size_t)(end - buf) + 4 + strtoul(cl + 17, NULL, 10);
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 5};
	char buf[65536];
	size_t got = 0;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd = -1, err = 0;

	/* Thousands of connections a second: closed with a reset (no TIME_WAIT
	 * left on this side), and a connect that finds no free local port (other
	 * tests share the loopback's ports) or is interrupted (libFuzzer's
	 * timeout alarm, every second) is retried before it counts as the
	 * server's failure. */
	for (int tries = 0; tries < 100; tries++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			break;
		}
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		err = errno;
		close(fd);
		fd = -1;
		if (err != EADDRNOTAVAIL && err != EAGAIN && err != EINTR)
			break;
		usleep(20000);
	}
	if (fd < 0) {
		fprintf(stderr, "fuzz_http: cannot connect to the server under test: %s\n",
			strerror(err));
		abort();
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < size;) {
		ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);

		if (n <= 0)
			break; /* the server closed early (a refusal): fine */
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n < 0 && errno == EAGAIN)
			abort(); /* no answer and no close within 5 s: a hang */
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			got = 0; /* only the start of each answer matters below */
	}
	close(fd);
	buf[got] = 0;
	if (any_500(buf, got))
		abort(); /* client data must never cause a 500 */
	return 0;
}
