/* SPDX-License-Identifier: MIT */
/*
 * Connection admission and deadlines of ptescoped's HTTP server, so that slow
 * or idle clients cannot lock others out (every legitimate client may share
 * one address: Prometheus and a reverse proxy on loopback).
 *
 * libmicrohttpd's own limits are not enough: its per-IP limit refuses the new
 * connection (so it acts as a global limit on loopback), its inactivity
 * timeout is reset by every byte (a client trickling its head never times
 * out), and at its global limit new connections wait in the backlog. So:
 *
 *   - every connection is tracked from accept (MHD_OPTION_NOTIFY_CONNECTION)
 *     in one list under a lock, with its phase: waiting for a request head
 *     (new or kept alive), receiving a body, or being answered;
 *   - a request head must be complete within head_timeout_s of the accept or
 *     of the previous answer; a body must bring body_min_bytes (or its end)
 *     every body_timeout_s; an answer must be taken by the client (the
 *     kernel's count of bytes the peer acknowledged, TCP_INFO, grows) at
 *     least every answer_timeout_s; a reaper thread shuts down the sockets of
 *     those that do not (libmicrohttpd then closes them). A request waiting
 *     for a query worker (http_pool.c) has no deadline here: its query's
 *     budget bounds it;
 *   - over max_per_ip connections from one address, or max_connections in
 *     all, a new connection evicts the one of that address (or any) that has
 *     waited longest for a head; when none waits (all are being served or
 *     send bodies), the new one is answered 503 once its head is in.
 *
 * libmicrohttpd's global limit is set above ours (HARD_EXTRA), so it keeps
 * accepting while we evict. Sockets are shut down only while their entry is
 * in the list: the CLOSED notification removes it before libmicrohttpd
 * closes the descriptor (0.9.75 notifies first, then closes), so a reused
 * descriptor is never touched.
 */
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "http_internal.h"

enum conn_phase { PH_HEAD, PH_BODY, PH_BUSY, PH_WORK };

struct pd_conn {
	struct pd_conn *prev, *next;
	int fd;
	int family;
	unsigned char addr[16];
	enum conn_phase phase;
	int64_t since_ms;   /* start of the phase, or of the last body progress */
	uint64_t body_part; /* body bytes since since_ms */
	uint64_t acked;	    /* PH_BUSY: bytes the peer had acknowledged at since_ms */
	bool listed;	    /* in the list (tracked from accept) */
	bool cut;	    /* shut down: on its way out, counted nowhere */
	bool refuse;	    /* over the limit with nobody to evict: 503 */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_addr(struct pd_conn *e, const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET) {
		e->family = AF_INET;
		memcpy(e->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		e->family = AF_INET6;
		memcpy(e->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

static bool same_addr(const struct pd_conn *a, const struct pd_conn *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* Shuts @e's socket down (under conn_lock): its poll wakes up, libmicrohttpd closes it. */
static void cut(struct pd_http *h, struct pd_conn *e, uint64_t *counter)
{
	e->cut = true;
	h->conns.open--;
	(*counter)++;
	shutdown(e->fd, SHUT_RDWR);
}

/* Under conn_lock: the entry waiting longest for a head (of @like's address if set). */
static struct pd_conn *oldest_waiting(struct pd_http *h, const struct pd_conn *self,
				      const struct pd_conn *like)
{
	struct pd_conn *best = NULL;

	for (struct pd_conn *e = h->conns.head; e; e = e->next)
		if (e != self && !e->cut && e->phase == PH_HEAD && (!like || same_addr(e, like)) &&
		    (!best || e->since_ms < best->since_ms))
			best = e;
	return best;
}

/* Under conn_lock: makes room for @e if its address or the server is over its limit. */
static void admit(struct pd_http *h, struct pd_conn *e)
{
	unsigned same = 0;
	struct pd_conn *victim;

	for (struct pd_conn *o = h->conns.head; o; o = o->next)
		same += !o->cut && same_addr(o, e);
	if (same > h->cfg.max_per_ip) {
		victim = oldest_waiting(h, e, e);
		if (!victim) {
			e->refuse = true;
			return;
		}
		cut(h, victim, &h->conns.evicted);
	}
	if (h->conns.open > h->cfg.max_connections) {
		victim = oldest_waiting(h, e, NULL);
		if (!victim) {
			e->refuse = true;
			return;
		}
		cut(h, victim, &h->conns.evicted);
	}
}

/* Under conn_lock: appends @e, counts it open and makes room for it. */
static void track(struct pd_http *h, struct pd_conn *e)
{
	e->prev = h->conns.tail;
	if (h->conns.tail) {
		h->conns.tail->next = e;
	} else {
		h->conns.head = e;
		pthread_cond_signal(&h->conns.wake); /* the reaper waits for a first one */
	}
	h->conns.tail = e;
	e->listed = true;
	h->conns.open++;
	admit(h, e);
}

/* Under conn_lock: unlinks @e (it is closing). */
static void untrack(struct pd_http *h, struct pd_conn *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		h->conns.head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		h->conns.tail = e->prev;
	if (!e->cut)
		h->conns.open--;
}

void pd_http_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			 enum MHD_ConnectionNotificationCode code)
{
	struct pd_http *h = cls;
	struct pd_conn *e = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		e = calloc(1, sizeof(*e));
		*socket_context = e;
		if (!e || !fd)
			return; /* untracked: libmicrohttpd's own limits still hold */
		e->fd = fd->connect_fd;
		set_addr(e, ad ? ad->client_addr : NULL);
		e->phase = PH_HEAD;
		e->since_ms = now_ms();
		pthread_mutex_lock(&h->conns.lock);
		track(h, e);
		pthread_mutex_unlock(&h->conns.lock);
		return;
	}
	if (!e)
		return;
	pthread_mutex_lock(&h->conns.lock);
	if (e->listed)
		untrack(h, e);
	pthread_mutex_unlock(&h->conns.lock);
	free(e);
	*socket_context = NULL;
}

static struct pd_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

/* Moves @c's entry to @phase from now; returns whether it is to be refused. */
static bool set_phase(struct pd_http *h, struct MHD_Connection *c, enum conn_phase phase)
{
	struct pd_conn *e = conn_of(c);
	bool refuse = false;

	if (!e || !e->listed)
		return false;
	pthread_mutex_lock(&h->conns.lock);
	e->phase = phase;
	e->since_ms = now_ms();
	e->body_part = 0;
	e->acked = 0;
	if (phase == PH_BODY && e->refuse) {
		refuse = true;
		e->refuse = false;
		h->conns.refused++;
	}
	pthread_mutex_unlock(&h->conns.lock);
	return refuse;
}

bool pd_http_conn_head(struct pd_http *h, struct MHD_Connection *c)
{
	return set_phase(h, c, PH_BODY);
}

void pd_http_conn_busy(struct pd_http *h, struct MHD_Connection *c)
{
	set_phase(h, c, PH_BUSY);
}

void pd_http_conn_idle(struct pd_http *h, struct MHD_Connection *c)
{
	set_phase(h, c, PH_HEAD);
}

void pd_http_conn_work(struct pd_http *h, struct MHD_Connection *c)
{
	set_phase(h, c, PH_WORK);
}

/* The bytes the peer of @fd has acknowledged so far (0 if unknown). */
static uint64_t bytes_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	return ti.tcpi_bytes_acked;
}

void pd_http_conn_body(struct pd_http *h, struct MHD_Connection *c, size_t n)
{
	struct pd_conn *e = conn_of(c);

	if (!e || !e->listed)
		return;
	pthread_mutex_lock(&h->conns.lock);
	e->body_part += n;
	if (e->body_part >= PD_HTTP_BODY_MIN_BYTES) {
		e->body_part = 0;
		e->since_ms = now_ms();
	}
	pthread_mutex_unlock(&h->conns.lock);
}

/* Under conn_lock: cuts the connections past their deadline. */
static void reap(struct pd_http *h)
{
	int64_t now = now_ms(), head = (int64_t)h->cfg.head_timeout_s * 1000;
	int64_t body = (int64_t)h->cfg.body_timeout_s * 1000;
	int64_t answer = (int64_t)h->cfg.answer_timeout_s * 1000;

	for (struct pd_conn *e = h->conns.head; e; e = e->next) {
		uint64_t acked;

		if (e->cut)
			continue;
		if (e->phase == PH_HEAD && now - e->since_ms > head) {
			cut(h, e, &h->conns.head_timeouts);
		} else if (e->phase == PH_BODY && now - e->since_ms > body) {
			cut(h, e, &h->conns.body_timeouts);
		} else if (e->phase == PH_BUSY) {
			/* an answer the client takes, however slowly, goes on */
			acked = bytes_acked(e->fd);
			if (acked != e->acked) {
				e->acked = acked;
				e->since_ms = now;
			} else if (now - e->since_ms > answer) {
				cut(h, e, &h->conns.answer_timeouts);
			}
		}
	}
}

static void *reaper_main(void *arg)
{
	struct pd_http *h = arg;
	struct timespec until;

	pthread_setname_np(pthread_self(), "pd-http-reaper");
	pthread_mutex_lock(&h->conns.lock);
	while (!h->conns.stop) {
		if (!h->conns.head) {
			/* nothing to time out: no wakeups while idle */
			pthread_cond_wait(&h->conns.wake, &h->conns.lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += 250 * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&h->conns.wake, &h->conns.lock, &until);
		reap(h);
	}
	pthread_mutex_unlock(&h->conns.lock);
	return NULL;
}

int pd_http_conn_init(struct pd_http *h)
{
	pthread_condattr_t a;
	int ret;

	pthread_mutex_init(&h->conns.lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&h->conns.wake, &a);
	pthread_condattr_destroy(&a);
	ret = pthread_create(&h->conns.reaper, NULL, reaper_main, h);
	h->conns.reaper_started = !ret;
	return -ret;
}

void pd_http_conn_stop_reaper(struct pd_http *h)
{
	if (!h->conns.reaper_started)
		return;
	pthread_mutex_lock(&h->conns.lock);
	h->conns.stop = true;
	pthread_cond_signal(&h->conns.wake);
	pthread_mutex_unlock(&h->conns.lock);
	pthread_join(h->conns.reaper, NULL);
	h->conns.reaper_started = false;
}

void pd_http_conn_destroy(struct pd_http *h)
{
	pd_http_conn_stop_reaper(h);
	pthread_cond_destroy(&h->conns.wake);
	pthread_mutex_destroy(&h->conns.lock);
}

json_t *pd_http_conn_status(struct pd_http *h)
{
	json_t *o;

	pthread_mutex_lock(&h->conns.lock);
	o = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "open", (json_int_t)h->conns.open, "max",
	    (json_int_t)h->cfg.max_connections, "max_per_ip", (json_int_t)h->cfg.max_per_ip,
	    "head_timeout_s", (json_int_t)h->cfg.head_timeout_s, "answer_timeout_s",
	    (json_int_t)h->cfg.answer_timeout_s, "evicted", (json_int_t)h->conns.evicted, "refused",
	    (json_int_t)h->conns.refused, "head_timeouts", (json_int_t)h->conns.head_timeouts,
	    "body_timeouts", (json_int_t)h->conns.body_timeouts, "answer_timeouts",
	    (json_int_t)h->conns.answer_timeouts);
	pthread_mutex_unlock(&h->conns.lock);
	return o;
}
