/* SPDX-License-Identifier: MIT */
/*
 * ptescoped's HTTP server: its configuration taken (limits and their
 * defaults, the listen address, the token, the web root), libmicrohttpd
 * started with the request handler (http_route.c) and the connection
 * tracking (http_conn.c), and everything stopped in order.
 *
 * Fed by requests from curl, the dashboard and Prometheus; feeds them the
 * core's status (struct pd_core), the metrics (metrics.c) and read-only
 * store queries; hands uploads to the core (pd_core.submit_replay). The
 * endpoints: http_status.c, http_metrics.c, http_api.c, http_inv.c,
 * http_upload.c, http_static.c.
 *
 * Sized for a handful of people and a fleet scraper per host, plus load
 * from careless clients: a fixed pool of threads each polling its share of
 * the connections (not the single-thread epoll mode, which stalls in
 * libmicrohttpd 0.9.75 once ~128 connections are open), bounded connections
 * globally and per IP, an inactivity timeout, bounded per-connection memory,
 * URL and header sizes, upload size and page sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"
#include "util.h"

#define DEFAULT_LISTEN "127.0.0.1:9466"
#define CONN_MEMORY_BYTES (64 * 1024)
/* libmicrohttpd's own connection limit is ours plus this, so that it keeps
 * accepting while http_conn.c evicts (its per-IP limit is not used). */
#define HARD_EXTRA 64

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[128];
	const char *colon, *hs = s;
	size_t hl;
	long long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, hs, hl);
	host[hl] = 0;
	if (pt_parse_int(colon + 1, 0, 65535, &port))
		goto bad;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
bad:
	snprintf(err, errlen, "listen address '%s': expected IPv4:PORT or [IPv6]:PORT", s);
	return -EINVAL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* libmicrohttpd's own messages (accept failures, limits) are debug-level
	 * noise for us: requests that matter get a JSON error instead. */
}

/* The limits left 0 in @c get their defaults. */
static void config_defaults(struct pd_http_config *c)
{
	if (!c->max_upload_bytes)
		c->max_upload_bytes = PD_HTTP_DEFAULT_MAX_UPLOAD;
	if (!c->max_connections)
		c->max_connections = 512;
	if (!c->max_per_ip)
		c->max_per_ip = 128;
	if (!c->timeout_s)
		c->timeout_s = 30;
	if (!c->head_timeout_s)
		c->head_timeout_s = 10;
	if (!c->body_timeout_s)
		c->body_timeout_s = 10;
	if (!c->answer_timeout_s)
		c->answer_timeout_s = 10;
	if (!c->threads)
		c->threads = 4;
	if (c->threads > PD_HTTP_MAX_POOL)
		c->threads = PD_HTTP_MAX_POOL;
	if (c->max_connections < c->threads)
		c->max_connections = c->threads;
	if (!c->query_queue)
		c->query_queue = PD_HTTP_QUERY_QUEUE;
	if (!c->query_budget_ms)
		c->query_budget_ms = PD_HTTP_QUERY_BUDGET_MS;
}

/*
 * @cfg into @h: the limits with their defaults, the strings it keeps, the
 * listen address into @ss, the token read, the web root opened. 0 or -errno
 * with @err.
 */
static int take_config(struct pd_http *h, const struct pd_http_config *cfg,
		       struct sockaddr_storage *ss, char *err, size_t errlen)
{
	int ret;

	h->cfg = *cfg;
	snprintf(h->listen, sizeof(h->listen), "%s", cfg->listen ? cfg->listen : DEFAULT_LISTEN);
	config_defaults(&h->cfg);
	h->cfg.db_path = cfg->db_path ? strdup(cfg->db_path) : NULL;
	h->cfg.web_root = NULL;
	h->cfg.token_file = NULL;
	h->cfg.allowed_hosts = NULL; /* kept as h->allowed_hosts */
	h->cfg.listen = h->listen;
	if ((cfg->db_path && !h->cfg.db_path) ||
	    (cfg->allowed_hosts && !(h->allowed_hosts = strdup(cfg->allowed_hosts)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = parse_listen(h->listen, ss, err, errlen);
	if (ret)
		return ret;
	h->listen_addr = *ss;
	if (cfg->token_file) {
		ret = pd_http_read_token(cfg->token_file, h->token, sizeof(h->token), &h->token_len, err,
				 errlen);
		if (ret)
			return ret;
	}
	if (cfg->web_root) {
		h->web_fd = open(cfg->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (h->web_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "web root %s: %s", cfg->web_root, strerror(errno));
			return ret;
		}
	}
	return 0;
}

int pd_http_start(const struct pd_http_config *cfg, const struct pd_core *core,
		  struct pd_metrics *metrics, struct pd_http **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct pd_http *h;
	unsigned flags =
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&h->pool_lock, NULL);
	h->web_fd = -1;
	ret = pd_http_conn_init(h);
	if (ret) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(-ret));
		goto fail;
	}
	h->core = *core;
	h->metrics = metrics;
	ret = take_config(h, cfg, &ss, err, errlen);
	if (ret)
		goto fail;
	ret = pd_http_lanes_start(h);
	if (ret) {
		snprintf(err, errlen, "cannot start the query workers: %s", strerror(-ret));
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, pd_http_on_request, h, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)h->cfg.threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(h->cfg.max_connections + HARD_EXTRA),
	    MHD_OPTION_NOTIFY_CONNECTION, pd_http_conn_notify, h, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)h->cfg.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)CONN_MEMORY_BYTES, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    MHD_OPTION_NOTIFY_COMPLETED, pd_http_on_completed, h, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log, h, MHD_OPTION_END);
	if (!h->d) {
		ret = -EADDRINUSE;
		snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
			 h->listen);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	pd_http_stop(h);
	return ret;
}

int pd_http_port(const struct pd_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? (int)i->port : -1;
}

void pd_http_stop(struct pd_http *h)
{
	if (!h)
		return;
	pd_http_conn_stop_reaper(h);
	/* every suspended connection resumed first: libmicrohttpd must not stop with one */
	pd_http_lanes_stop(h);
	if (h->d)
		MHD_stop_daemon(h->d);
	pd_http_lanes_free(h);
	while (h->nr_pool)
		store_close(h->pool[--h->nr_pool]);
	if (h->web_fd >= 0)
		close(h->web_fd);
	pthread_mutex_destroy(&h->pool_lock);
	pd_http_conn_destroy(h);
	free((char *)h->cfg.db_path);
	free(h->allowed_hosts);
	explicit_bzero(h->token, sizeof(h->token));
	free(h);
}
