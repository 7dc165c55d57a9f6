/* SPDX-License-Identifier: MIT */
/*
 * A string interner: maps strings (function names, comms) to small stable ids
 * and back. Strings are copied into arenas owned by the interner and stay
 * valid until pt_intern_free(). Ids start at 1 (0 means "no string").
 * Sized for the tens of thousands of distinct kernel function names a full
 * function_graph trace can hold; lookups are O(1) on average.
 */
#ifndef PTESCOPE_INTERN_H
#define PTESCOPE_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct pt_intern;

/* Returns 0 or -ENOMEM. Free with pt_intern_free(). */
int pt_intern_new(struct pt_intern **out);
void pt_intern_free(struct pt_intern *in);

/*
 * Interns @len bytes of @s (need not be NUL-terminated). Returns the id (>= 1)
 * or a negative errno (-ENOMEM, -E2BIG when the interner is full).
 */
int64_t pt_intern_add(struct pt_intern *in, const char *s, size_t len);

/* The id of @len bytes of @s if interned already, else 0. */
uint32_t pt_intern_find(const struct pt_intern *in, const char *s, size_t len);

/* Like pt_intern_add() but with a caller-chosen id (>= 1); for mirroring
 * another interner. Returns 0, -EEXIST if the id is taken, or -ENOMEM. */
int pt_intern_put(struct pt_intern *in, uint32_t id, const char *s, size_t len);

/* The string for @id, or NULL. Owned by the interner. */
const char *pt_intern_str(const struct pt_intern *in, uint32_t id);

/* Number of strings held. */
size_t pt_intern_count(const struct pt_intern *in);



/*
 * A map from 64-bit keys (function addresses, pids) to 32-bit values, for
 * per-event caches in readers. Open addressing; key 0 is allowed.
 */
struct pt_u64map;

int pt_u64map_new(struct pt_u64map **out);
void pt_u64map_free(struct pt_u64map *m);
/* Returns 1 and sets *val when @key is present, 0 when not. */
int pt_u64map_get(const struct pt_u64map *m, uint64_t key, uint32_t *val);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int pt_u64map_put(struct pt_u64map *m, uint64_t key, uint32_t val);
#endif
