/* SPDX-License-Identifier: MIT */
/*
 * The live forks' queue and its /proc reader thread (livequeue.h). A ring of
 * slots numbered by sequence (items head..tail-1 wait); the reader works
 * through them in order (next_read) and names the slot it is reading by its
 * sequence number, never by pointer, so that a fork the writer took away
 * meanwhile is simply not there any more when the reading comes back.
 */
#include "livequeue.h"
#include "yield.h"

#include "proccg.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_WAIT_NS (250 * 1000000ull)
#define DEFAULT_MAX_FORKS 4096
#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define READER_JOIN_NS (2 * 1000000000ull) /* how long a stop waits for the reader */

enum slot_state { SL_PENDING, SL_READING, SL_READY };

struct slot {
	struct pt_fork f;
	struct pt_parent_mem probe_mem; /* f's own, from the capture: kept when /proc is late */
	int64_t source_id;
	uint64_t deadline_ns; /* the fork waits for its reading until then */
	size_t bytes;	      /* of detail */
	enum slot_state state;
	bool late;
};

struct pd_liveq {
	pthread_mutex_t lock;
	pthread_cond_t ready; /* the writer: the head may be ready */
	pthread_cond_t work;  /* the reader: a fork waits to be read */
	pthread_cond_t room;  /* push: room again; drain: empty */
	struct slot *ring;
	size_t cap, max_bytes, bytes;
	uint64_t head, tail, next_read; /* sequence numbers */
	uint64_t wait_ns;
	bool parent_mem, closed, stop, popped; /* popped: the writer holds one */
	struct pd_procmem *pm;		       /* the reader thread's only */
	struct pd_proccg *cg;		       /* the reader thread's only */
	struct pd_liveq_counts counts;
	pthread_t reader;
	bool reader_started;
	int refs; /* the owner, and the reader thread while it runs */
};

static struct slot *slot_of(struct pd_liveq *q, uint64_t seq)
{
	return &q->ring[seq % q->cap];
}

static void destroy(struct pd_liveq *q)
{
	for (uint64_t s = q->head; s < q->tail; s++)
		pt_fork_release(&slot_of(q, s)->f);
	pd_procmem_free(q->pm);
	pd_proccg_free(q->cg);
	free(q->ring);
	pthread_cond_destroy(&q->ready);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->room);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* Drops one reference (under no lock); the last one frees. */
static void unref(struct pd_liveq *q)
{
	bool last;

	pthread_mutex_lock(&q->lock);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (last)
		destroy(q);
}

/* Under lock: the next fork to read, or NULL. Forks whose wait is over are
 * let go unread (they are late). */
static struct slot *next_to_read(struct pd_liveq *q, uint64_t now, uint64_t *seq)
{
	if (q->next_read < q->head)
		q->next_read = q->head;
	while (q->next_read < q->tail) {
		struct slot *s = slot_of(q, q->next_read);

		if (s->state == SL_PENDING && now < s->deadline_ns) {
			*seq = q->next_read++;
			return s;
		}
		if (s->state == SL_PENDING) {
			s->state = SL_READY;
			s->late = true;
			pthread_cond_broadcast(&q->ready);
		}
		q->next_read++;
	}
	return NULL;
}

/* One reading, outside the lock, of what the fork of @seq names. */
static void read_one(struct pd_liveq *q, uint64_t seq, struct pt_fork *key, uint64_t deadline)
{
	struct slot *s;

	pd_yield_point();
	if (q->pm) {
		struct pt_parent_mem probed = key->mem;

		pd_procmem_fill(q->pm, key, &probed, pt_mono_ns(), deadline);
	}
	if (q->cg)
		pd_proccg_fill(q->cg, key, pt_mono_ns());
	pthread_mutex_lock(&q->lock);
	if (q->pm)
		pd_procmem_counts(q->pm, &q->counts.reads, &q->counts.skipped);
	if (seq >= q->head && seq < q->tail) {
		s = slot_of(q, seq);
		if (s->state == SL_READING) {
			s->f.mem = key->mem;
			memcpy(s->f.cgroup, key->cgroup, sizeof(s->f.cgroup));
			s->state = SL_READY;
			pthread_cond_broadcast(&q->ready);
		}
	}
}

static void *reader_main(void *arg)
{
	struct pd_liveq *q = arg;

	pthread_setname_np(pthread_self(), "pd-proc-read");
	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		struct pt_fork key;
		uint64_t seq, deadline;
		struct slot *s = next_to_read(q, pt_mono_ns(), &seq);

		if (!s) {
			pthread_cond_wait(&q->work, &q->lock);
			continue;
		}
		s->state = SL_READING;
		memset(&key, 0, sizeof(key));
		key.mem = s->probe_mem; /* the capture's reading, if any (procmem.h) */
		key.parent_pid = s->f.parent_pid;
		key.child_pid = s->f.child_pid;
		memcpy(key.parent_comm, s->f.parent_comm, sizeof(key.parent_comm));
		deadline = s->deadline_ns;
		pthread_mutex_unlock(&q->lock);
		read_one(q, seq, &key, deadline); /* returns with the lock held */
	}
	pthread_mutex_unlock(&q->lock);
	unref(q);
	return NULL;
}

int pd_liveq_new(const struct pd_liveq_opts *o, struct pd_liveq **out)
{
	struct pd_liveq *q = calloc(1, sizeof(*q));
	pthread_condattr_t a;
	int ret;

	*out = NULL;
	if (!q)
		return -ENOMEM;
	q->cap = o->max_forks ? o->max_forks : DEFAULT_MAX_FORKS;
	q->max_bytes = o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
	q->wait_ns = o->mem_wait_ns ? o->mem_wait_ns : DEFAULT_WAIT_NS;
	q->parent_mem = o->parent_mem || o->cgroup; /* a fork waits for its reading */
	q->refs = 1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&q->ready, &a);
	pthread_cond_init(&q->work, &a);
	pthread_cond_init(&q->room, &a);
	pthread_condattr_destroy(&a);
	q->ring = calloc(q->cap, sizeof(*q->ring));
	if (!q->ring || (o->parent_mem && pd_procmem_new(&o->procmem, &q->pm)) ||
	    (o->cgroup && pd_proccg_new(o->procmem.proc_root, &q->cg))) {
		destroy(q);
		return -ENOMEM;
	}
	if (q->parent_mem) {
		q->refs++;
		ret = -pthread_create(&q->reader, NULL, reader_main, q);
		if (ret) {
			destroy(q);
			return ret;
		}
		q->reader_started = true;
	}
	*out = q;
	return 0;
}

static size_t detail_bytes(const struct pt_fork *f)
{
	return f->nr_vma * sizeof(*f->vma) + f->nr_pass * sizeof(*f->pass);
}

int pd_liveq_push(struct pd_liveq *q, const struct pt_fork *f, int64_t source_id, uint64_t now_ns)
{
	size_t bytes = detail_bytes(f);
	struct slot *s;
	struct pt_fork copy;

	if (pt_fork_copy(&copy, f))
		return -ENOMEM;
	pthread_mutex_lock(&q->lock);
	/* full: wait for the writer (one fork's detail alone may exceed the byte cap) */
	while (!q->closed &&
	       (q->tail - q->head == q->cap || (q->bytes && q->bytes + bytes > q->max_bytes)))
		pthread_cond_wait(&q->room, &q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		pt_fork_release(&copy);
		return -ESHUTDOWN;
	}
	s = slot_of(q, q->tail++);
	*s = (struct slot){.f = copy,
			   .probe_mem = copy.mem,
			   .source_id = source_id,
			   .deadline_ns = now_ns + q->wait_ns,
			   .bytes = bytes,
			   .state = q->parent_mem ? SL_PENDING : SL_READY};
	q->bytes += bytes;
	pthread_cond_signal(&q->work);
	pthread_cond_broadcast(&q->ready);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static void deadline_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

int pd_liveq_pop(struct pd_liveq *q, struct pd_live_item *out)
{
	struct slot *s;
	struct timespec ts;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (q->head == q->tail) {
			if (q->closed) {
				pthread_mutex_unlock(&q->lock);
				return 0;
			}
			pthread_cond_wait(&q->ready, &q->lock);
			continue;
		}
		s = slot_of(q, q->head);
		if (s->state == SL_READY || pt_mono_ns() >= s->deadline_ns)
			break;
		deadline_ts(s->deadline_ns, &ts);
		pthread_cond_timedwait(&q->ready, &q->lock, &ts);
	}
	if (s->state != SL_READY || s->late) {
		s->f.mem = s->probe_mem;
		q->counts.late++;
		out->mem_late = true;
	} else {
		out->mem_late = false;
	}
	out->f = s->f;
	out->source_id = s->source_id;
	q->bytes -= s->bytes;
	memset(s, 0, sizeof(*s));
	q->head++;
	q->popped = true;
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->lock);
	return 1;
}

void pd_liveq_done(struct pd_liveq *q)
{
	pthread_mutex_lock(&q->lock);
	q->popped = false;
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->lock);
}

void pd_liveq_drain(struct pd_liveq *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->head != q->tail || q->popped)
		pthread_cond_wait(&q->room, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void pd_liveq_close(struct pd_liveq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->ready);
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->lock);
}

void pd_liveq_counts(struct pd_liveq *q, struct pd_liveq_counts *out)
{
	pthread_mutex_lock(&q->lock);
	*out = q->counts;
	out->queued = (size_t)(q->tail - q->head);
	pthread_mutex_unlock(&q->lock);
}

void pd_liveq_free(struct pd_liveq *q)
{
	struct timespec ts;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closed = q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_cond_broadcast(&q->ready);
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->lock);
	if (q->reader_started) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(READER_JOIN_NS / 1000000000ull);
		/* a reader stuck in /proc is left behind: it frees the queue when it returns */
		if (pthread_timedjoin_np(q->reader, NULL, &ts))
			pthread_detach(q->reader);
	}
	unref(q);
}
