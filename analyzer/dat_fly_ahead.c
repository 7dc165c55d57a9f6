/* SPDX-License-Identifier: MIT */
/*
 * The decompression thread of the page walk (dat_fly_ahead.h). Per CPU a
 * ring of chunk buffers: the thread fills the slot after the
 * ready ones, the walk takes them in order and gives each back when it asks
 * for the next. One lock and two conditions for all CPUs: the thread waits
 * for room (space), the walk for a chunk (data). The thread serves the CPU
 * with the fewest ready chunks first, so the one the walk waits on is next.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "bigbuf.h"
#include "dat_fly_ahead.h"

struct ahead_slot {
	uint8_t *buf; /* inside its CPU's arena */
	size_t len;
	bool failed;
};

struct ahead_cpu {
	const uint8_t *table;	 /* the thread's next chunk header */
	const uint8_t *released; /* the mapping given back below this (fly_release()) */
	uint32_t left;		 /* chunks the thread has not taken */
	struct ahead_slot *slot; /* a->slots of them */
	uint8_t *arena;		 /* their buffers, a->max_chunk bytes each (bigbuf.h) */
	unsigned head, ready;	 /* the walk's slot; slots decompressed, not given back */
	bool held, filling;	 /* the walk holds slot[head]; the thread fills one */
};

struct fly_ahead {
	pthread_mutex_t lock;
	pthread_cond_t space, data;
	pthread_t thread;
	bool started, stop, release;
	ZSTD_DCtx *zd;
	int n;
	unsigned slots;	  /* per CPU */
	size_t max_chunk; /* the largest chunk, decompressed */
	struct ahead_cpu *cpu;
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* The CPU with chunks to go, room and the fewest ready chunks; -1: none.
 * *more: whether any CPU has chunks to go. Under the lock. */
static int pick(const struct fly_ahead *a, bool *more)
{
	int best = -1;

	*more = false;
	for (int i = 0; i < a->n; i++) {
		const struct ahead_cpu *c = &a->cpu[i];

		*more |= c->left > 0;
		if (c->left && c->ready < a->slots && (best < 0 || c->ready < a->cpu[best].ready))
			best = i;
	}
	return best;
}

/* Decompresses the chunk at @table into @s. Outside the lock. */
static void fill(const struct fly_ahead *a, const uint8_t *table, struct ahead_slot *s)
{
	uint32_t csize = rd32(table), usize = rd32(table + 4);
	ZSTD_DCtx *zd = a->zd;
	size_t got;

	s->failed = true;
	s->len = 0;
	if (usize > a->max_chunk)
		return;
	got = ZSTD_decompressDCtx(zd, s->buf, usize, table + 8, csize);
	if (!ZSTD_isError(got) && got == usize) {
		s->len = usize;
		s->failed = false;
	}
}

static void *ahead_main(void *arg)
{
	struct fly_ahead *a = arg;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		bool more;
		int i = a->stop ? -1 : pick(a, &more);
		struct ahead_cpu *c;
		struct ahead_slot *s;
		const uint8_t *table;

		if (a->stop || (i < 0 && !more))
			break;
		if (i < 0) {
			pthread_cond_wait(&a->space, &a->lock);
			continue;
		}
		c = &a->cpu[i];
		s = &c->slot[(c->head + c->ready) % a->slots];
		table = c->table;
		c->table += 8 + rd32(table);
		c->left--;
		c->filling = true;
		pthread_mutex_unlock(&a->lock);
		if (a->release) /* only this thread reads the chunks */
			fly_release(&c->released, table);
		fill(a, table, s);
		pthread_mutex_lock(&a->lock);
		c->ready++;
		c->filling = false;
		pthread_cond_broadcast(&a->data);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int fly_ahead_next(struct fly_ahead *a, int i, const uint8_t **buf, size_t *len)
{
	struct ahead_cpu *c = &a->cpu[i];
	struct ahead_slot *s;

	pthread_mutex_lock(&a->lock);
	if (c->held) { /* the walk is past the chunk it held */
		c->head = (c->head + 1) % a->slots;
		c->ready--;
		c->held = false;
		pthread_cond_signal(&a->space);
	}
	while (!c->ready && (c->left || c->filling))
		pthread_cond_wait(&a->data, &a->lock);
	if (!c->ready) {
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	s = &c->slot[c->head];
	c->held = true;
	pthread_mutex_unlock(&a->lock);
	if (s->failed)
		return -1;
	*buf = s->buf;
	*len = s->len;
	return 1;
}

int fly_ahead_new(int n, unsigned slots, size_t max_chunk, bool release,
		  const uint8_t *const *table, const uint32_t *count, struct fly_ahead **out)
{
	struct fly_ahead *a = calloc(1, sizeof(*a));
	bool ok;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->space, NULL);
	pthread_cond_init(&a->data, NULL);
	a->n = n;
	a->slots = slots < 2 ? 2 : slots;
	a->max_chunk = max_chunk;
	a->release = release;
	a->cpu = calloc(n > 0 ? (size_t)n : 1, sizeof(*a->cpu));
	a->zd = ZSTD_createDCtx();
	ok = a->cpu && a->zd;
	for (int i = 0; ok && i < n; i++) {
		a->cpu[i] =
		    (struct ahead_cpu){.table = table[i], .released = table[i], .left = count[i]};
		a->cpu[i].slot = calloc(a->slots, sizeof(*a->cpu[i].slot));
		a->cpu[i].arena = pt_bigbuf_alloc(a->slots * max_chunk);
		ok = a->cpu[i].slot && a->cpu[i].arena;
		for (unsigned k = 0; ok && k < a->slots; k++)
			a->cpu[i].slot[k].buf = a->cpu[i].arena + k * max_chunk;
	}
	if (!ok) {
		fly_ahead_free(a);
		return -ENOMEM;
	}
	if (pthread_create(&a->thread, NULL, ahead_main, a)) {
		fly_ahead_free(a);
		return -EAGAIN;
	}
	a->started = true;
	*out = a;
	return 0;
}

void fly_ahead_free(struct fly_ahead *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_broadcast(&a->space);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	for (int i = 0; a->cpu && i < a->n; i++) {
		pt_bigbuf_free(a->cpu[i].arena, a->slots * a->max_chunk);
		free(a->cpu[i].slot);
	}
	pthread_cond_destroy(&a->data);
	pthread_cond_destroy(&a->space);
	pthread_mutex_destroy(&a->lock);
	ZSTD_freeDCtx(a->zd);
	free(a->cpu);
	free(a);
}
