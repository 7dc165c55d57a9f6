/* SPDX-License-Identifier: MIT */
/*
 * String interner (intern.h): an open-addressing hash table of ids over
 * strings copied into 64 KiB arenas. Fed by the readers with every function
 * name and comm they meet; read by anything holding an id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

#define ARENA_BYTES (64 * 1024)
#define MAX_STRINGS (1u << 24)
#define MAX_STRING_BYTES (1u << 16)

struct arena {
	struct arena *next;
	size_t used, size;
	char data[];
};

struct pt_intern {
	struct arena *arenas;
	char **strs; /* by id; strs[0] unused */
	uint32_t *lens;
	size_t nr, cap;	 /* ids in use (including 0), capacity of strs */
	uint32_t *slots; /* hash table of ids, 0 = empty */
	size_t nr_slots; /* power of two */
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

int pt_intern_new(struct pt_intern **out)
{
	struct pt_intern *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->cap = 256;
	in->nr = 1;
	in->nr_slots = 512;
	in->strs = calloc(in->cap, sizeof(*in->strs));
	in->lens = calloc(in->cap, sizeof(*in->lens));
	in->slots = calloc(in->nr_slots, sizeof(*in->slots));
	if (!in->strs || !in->lens || !in->slots) {
		pt_intern_free(in);
		return -ENOMEM;
	}
	*out = in;
	return 0;
}

void pt_intern_free(struct pt_intern *in)
{
	if (!in)
		return;
	while (in->arenas) {
		struct arena *a = in->arenas;

		in->arenas = a->next;
		free(a);
	}
	free(in->strs);
	free(in->lens);
	free(in->slots);
	free(in);
}

static char *arena_copy(struct pt_intern *in, const char *s, size_t len)
{
	size_t need = len + 1;
	struct arena *a = in->arenas;
	char *p;

	if (!a || a->size - a->used < need) {
		size_t size = need > ARENA_BYTES ? need : ARENA_BYTES;

		a = malloc(sizeof(*a) + size);
		if (!a)
			return NULL;
		a->used = 0;
		a->size = size;
		a->next = in->arenas;
		in->arenas = a;
	}
	p = a->data + a->used;
	memcpy(p, s, len);
	p[len] = '\0';
	a->used += need;
	return p;
}

static size_t slot_find(const struct pt_intern *in, const char *s, size_t len, uint64_t h)
{
	size_t mask = in->nr_slots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t id = in->slots[i];

		if (!id || (in->lens[id] == len && !memcmp(in->strs[id], s, len)))
			return i;
	}
}

static int grow(struct pt_intern *in)
{
	if (in->nr == in->cap) {
		size_t cap = in->cap * 2;
		char **strs = realloc(in->strs, cap * sizeof(*strs));

		if (!strs)
			return -ENOMEM;
		in->strs = strs;
		uint32_t *lens = realloc(in->lens, cap * sizeof(*lens));

		if (!lens)
			return -ENOMEM;
		in->lens = lens;
		in->cap = cap;
	}
	if (in->nr * 2 >= in->nr_slots) {
		size_t nr_slots = in->nr_slots * 2;
		uint32_t *slots = calloc(nr_slots, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		free(in->slots);
		in->slots = slots;
		in->nr_slots = nr_slots;
		for (size_t id = 1; id < in->nr; id++) {
			uint64_t h = hash_bytes(in->strs[id], in->lens[id]);

			in->slots[slot_find(in, in->strs[id], in->lens[id], h)] = (uint32_t)id;
		}
	}
	return 0;
}

static int64_t insert(struct pt_intern *in, uint32_t want_id, const char *s, size_t len)
{
	uint64_t h;
	size_t slot;
	char *copy;
	int ret;

	if (len > MAX_STRING_BYTES)
		len = MAX_STRING_BYTES;
	h = hash_bytes(s, len);
	slot = slot_find(in, s, len, h);
	if (in->slots[slot] && !want_id)
		return in->slots[slot];
	if (in->nr >= MAX_STRINGS)
		return -E2BIG;
	if (want_id && want_id != in->nr)
		return -EEXIST; /* mirrors must define ids in order */
	ret = grow(in);
	if (ret)
		return ret;
	copy = arena_copy(in, s, len);
	if (!copy)
		return -ENOMEM;
	in->strs[in->nr] = copy;
	in->lens[in->nr] = (uint32_t)len;
	slot = slot_find(in, s, len, h);
	if (!in->slots[slot])
		in->slots[slot] = (uint32_t)in->nr;
	return (int64_t)in->nr++;
}

uint32_t pt_intern_find(const struct pt_intern *in, const char *s, size_t len)
{
	if (len > MAX_STRING_BYTES)
		len = MAX_STRING_BYTES;
	return in->nr_slots ? in->slots[slot_find(in, s, len, hash_bytes(s, len))] : 0;
}

int64_t pt_intern_add(struct pt_intern *in, const char *s, size_t len)
{
	return insert(in, 0, s, len);
}

int pt_intern_put(struct pt_intern *in, uint32_t id, const char *s, size_t len)
{
	int64_t ret;

	if (!id)
		return -EINVAL;
	ret = insert(in, id, s, len);
	return ret < 0 ? (int)ret : 0;
}

const char *pt_intern_str(const struct pt_intern *in, uint32_t id)
{
	return id && id < in->nr ? in->strs[id] : NULL;
}

size_t pt_intern_count(const struct pt_intern *in)
{
	return in->nr - 1;
}

struct pt_u64map_slot {
	uint64_t key;
	uint32_t val;
	uint32_t used;
};

struct pt_u64map {
	struct pt_u64map_slot *slots;
	size_t nr, nr_slots; /* nr_slots is a power of two */
};

static size_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

int pt_u64map_new(struct pt_u64map **out)
{
	struct pt_u64map *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->nr_slots = 1024;
	m->slots = calloc(m->nr_slots, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void pt_u64map_free(struct pt_u64map *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

static struct pt_u64map_slot *u64map_slot(const struct pt_u64map *m, uint64_t key)
{
	size_t mask = m->nr_slots - 1;

	for (size_t i = mix64(key) & mask;; i = (i + 1) & mask)
		if (!m->slots[i].used || m->slots[i].key == key)
			return &m->slots[i];
}

int pt_u64map_get(const struct pt_u64map *m, uint64_t key, uint32_t *val)
{
	const struct pt_u64map_slot *s = u64map_slot(m, key);

	if (!s->used)
		return 0;
	*val = s->val;
	return 1;
}

int pt_u64map_put(struct pt_u64map *m, uint64_t key, uint32_t val)
{
	struct pt_u64map_slot *s;

	if ((m->nr + 1) * 2 > m->nr_slots) {
		struct pt_u64map bigger = {.nr_slots = m->nr_slots * 2};

		bigger.slots = calloc(bigger.nr_slots, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->nr_slots; i++)
			if (m->slots[i].used)
				*u64map_slot(&bigger, m->slots[i].key) = m->slots[i];
		free(m->slots);
		m->slots = bigger.slots;
		m->nr_slots = bigger.nr_slots;
	}
	s = u64map_slot(m, key);
	if (!s->used) {
		s->used = 1;
		s->key = key;
		m->nr++;
	}
	s->val = val;
	return 0;
}
