/* SPDX-License-Identifier: MIT */
/*
 * A fork's detail stored packed, one row per fork rather than a row per item:
 * its copy_pte_range passes (fork_pass: fork_id, data) and its VMA copies
 * (fork_vma: fork_id, data). The default capture gives every fork its passes
 * (43 for a 64 MiB fork, thousands for a Redis BGSAVE) and its VMAs (13 for a
 * small program, hundreds for a Python or Java process), and a row each was
 * most of the daemon's work per fork (about 10,000 instructions a pass, 8,000
 * a VMA, against one insert for all). Forks stored before migration 0007
 * keep their pte_pass rows and those before 0009 their vma_copy rows, which
 * every reader here still reads. Fed by store_write.c; read by the queries,
 * purge and the rollups' rebuild.
 *
 * The formats, little endian, in order:
 * - a pass, STORE_PASS_BYTES: i32 vma, i32 ptes (-1: not traced), i64
 *   start_ns and i64 hold_ns (-1: unknown), u32 flags (1 new_pmd, 2
 *   resumed), u32 zero;
 * - a VMA, STORE_VMA_BYTES: i64 start_ns and i64 dur_ns (-1: unknown), i32
 *   passes (-1: not known), i32 ptes (-1: not traced), u32 flags (1 huge),
 *   u32 zero.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

#define STORE_PASS_BYTES 32
#define FLAG_NEW_PMD 1u
#define FLAG_RESUMED 2u
/* A pass covers at least a page table of 512 PTEs (2 MiB of address space);
 * a 64-bit address space has 2^27 of them: no honest blob is longer. */
#define MAX_PASSES (1u << 27)
#define STORE_VMA_BYTES 32
#define FLAG_HUGE 1u
/* vm.max_map_count is an int: no honest blob is longer */
#define MAX_VMAS (1u << 31)

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t time_or_neg(uint64_t ns)
{
	return ns == PT_NO_TIME || ns > INT64_MAX ? (uint64_t)-1 : ns;
}

int store_passes_pack(const struct pt_pte_pass *pass, size_t n, unsigned char **out,
		      size_t *len)
{
	unsigned char *b;

	*out = NULL;
	*len = 0;
	if (!n)
		return 0;
	if (n > MAX_PASSES || !(b = malloc(n * STORE_PASS_BYTES)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = b + i * STORE_PASS_BYTES;

		put32(p, (uint32_t)pass[i].vma);
		put32(p + 4, (uint32_t)(pass[i].ptes < 0 ? -1 : pass[i].ptes));
		put64(p + 8, time_or_neg(pass[i].start_ns));
		put64(p + 16, time_or_neg(pass[i].hold_ns));
		put32(p + 24, (pass[i].new_pmd ? FLAG_NEW_PMD : 0) |
				  (pass[i].resumed ? FLAG_RESUMED : 0));
		put32(p + 28, 0);
	}
	*out = b;
	*len = n * STORE_PASS_BYTES;
	return 0;
}

static uint64_t time_of(uint64_t v)
{
	return (int64_t)v < 0 ? PT_NO_TIME : v;
}

int store_passes_unpack(const void *blob, size_t len, struct pt_pte_pass **out, size_t *n)
{
	const unsigned char *b = blob;
	struct pt_pte_pass *p;

	*out = NULL;
	*n = 0;
	if (len % STORE_PASS_BYTES || len / STORE_PASS_BYTES > MAX_PASSES)
		return -EINVAL;
	if (!len)
		return 0;
	if (!(p = calloc(len / STORE_PASS_BYTES, sizeof(*p))))
		return -ENOMEM;
	for (size_t i = 0; i < len / STORE_PASS_BYTES; i++, b += STORE_PASS_BYTES) {
		uint32_t flags = get32(b + 24);

		p[i].vma = (int32_t)get32(b);
		p[i].ptes = (int32_t)get32(b + 4);
		p[i].start_ns = time_of(get64(b + 8));
		p[i].hold_ns = time_of(get64(b + 16));
		p[i].new_pmd = flags & FLAG_NEW_PMD;
		p[i].resumed = (flags & FLAG_RESUMED) != 0;
		if (p[i].ptes < -1 || (flags & ~(FLAG_NEW_PMD | FLAG_RESUMED)) || get32(b + 28)) {
			free(p);
			return -EINVAL;
		}
	}
	*out = p;
	*n = len / STORE_PASS_BYTES;
	return 0;
}

/* ---- VMAs ---- */

int store_vmas_pack(const struct pt_vma_copy *vma, size_t n, unsigned char **out, size_t *len)
{
	unsigned char *b;

	*out = NULL;
	*len = 0;
	if (!n)
		return 0;
	if (n > MAX_VMAS || !(b = malloc(n * STORE_VMA_BYTES)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = b + i * STORE_VMA_BYTES;

		put64(p, time_or_neg(vma[i].start_ns));
		put64(p + 8, time_or_neg(vma[i].dur_ns));
		put32(p + 16, (uint32_t)(vma[i].passes < 0 ? -1 : vma[i].passes));
		put32(p + 20, (uint32_t)(vma[i].ptes < 0 ? -1 : vma[i].ptes));
		put32(p + 24, vma[i].huge ? FLAG_HUGE : 0);
		put32(p + 28, 0);
	}
	*out = b;
	*len = n * STORE_VMA_BYTES;
	return 0;
}

int store_vmas_unpack(const void *blob, size_t len, struct pt_vma_copy **out, size_t *n)
{
	const unsigned char *b = blob;
	struct pt_vma_copy *v;

	*out = NULL;
	*n = 0;
	if (len % STORE_VMA_BYTES || len / STORE_VMA_BYTES > MAX_VMAS)
		return -EINVAL;
	if (!len)
		return 0;
	if (!(v = calloc(len / STORE_VMA_BYTES, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < len / STORE_VMA_BYTES; i++, b += STORE_VMA_BYTES) {
		uint32_t flags = get32(b + 24);

		v[i].start_ns = time_of(get64(b));
		v[i].dur_ns = time_of(get64(b + 8));
		v[i].passes = (int32_t)get32(b + 16);
		v[i].ptes = (int32_t)get32(b + 20);
		v[i].huge = flags & FLAG_HUGE;
		if (v[i].passes < -1 || v[i].ptes < -1 || (flags & ~FLAG_HUGE) || get32(b + 28)) {
			free(v);
			return -EINVAL;
		}
	}
	*out = v;
	*n = len / STORE_VMA_BYTES;
	return 0;
}

/* ---- the rows ---- */

/* Stores @len bytes @b (a packed blob, freed here) as fork @fork_id's row
 * through @st; nothing when empty. @storing names the step in the error. */
static int insert_packed(struct store *s, sqlite3_stmt *st, int64_t fork_id, unsigned char *b,
			 size_t len, const char *storing, char *err, size_t errlen)
{
	int rc;

	if (!len)
		return 0;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, fork_id);
	sqlite3_bind_blob64(st, 2, b, len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(b);
	return rc == SQLITE_DONE ? 0 : store_sql_fail(s, err, errlen, rc, storing);
}

int store_insert_passes(struct store *s, int64_t fork_id, const struct pt_fork *f, char *err,
			size_t errlen)
{
	unsigned char *b;
	size_t len;

	if (store_passes_pack(f->pass, f->nr_pass, &b, &len))
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	return insert_packed(s, s->ins_pass, fork_id, b, len, "storing the PTE passes", err,
			     errlen);
}

int store_insert_vmas(struct store *s, int64_t fork_id, const struct pt_fork *f, char *err,
		      size_t errlen)
{
	unsigned char *b;
	size_t len;

	if (store_vmas_pack(f->vma, f->nr_vma, &b, &len))
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	return insert_packed(s, s->ins_vma, fork_id, b, len, "storing the VMA copies", err, errlen);
}

/* A statement of @s prepared at its first use. */
static int lazy(struct store *s, sqlite3_stmt **st, const char *sql, char *err, size_t errlen)
{
	if (*st) {
		sqlite3_reset(*st);
		return 0;
	}
	return store_prepare(s, sql, st, err, errlen);
}

/*
 * Fork @fork_id's packed row through *@st (@sql, prepared at first use): 1
 * with its blob in @data and @len (valid until *@st is reset), 0 when it has
 * none (stored before its migration), or -errno. @reading names the step in
 * the error.
 */
static int packed_row(struct store *s, sqlite3_stmt **st, const char *sql, int64_t fork_id,
		      const void **data, size_t *len, const char *reading, char *err, size_t errlen)
{
	int rc, r = lazy(s, st, sql, err, errlen);

	if (r)
		return r;
	sqlite3_bind_int64(*st, 1, fork_id);
	rc = sqlite3_step(*st);
	if (rc == SQLITE_ROW) {
		*data = sqlite3_column_blob(*st, 0);
		*len = (size_t)sqlite3_column_bytes(*st, 0);
		return 1;
	}
	sqlite3_reset(*st);
	return rc == SQLITE_DONE ? 0 : store_sql_fail(s, err, errlen, rc, reading);
}

/* @r, what unpacking fork @fork_id's @what returned, with its message. */
static int unpacked(struct store *s, int r, int64_t fork_id, const char *what, char *err,
		    size_t errlen)
{
	if (r == -EINVAL)
		return store_fail(s, err, errlen, r, "fork %lld: its stored %s are damaged",
				  (long long)fork_id, what);
	return r ? store_fail(s, err, errlen, r, "out of memory") : 0;
}

/*
 * The detail of forks stored before its packed table, a row each, through
 * *@st (@sql, prepared at first use): a new array of @size-byte items in
 * *@out, *@n of them, each filled by @fill from the row. 0 or -errno
 * (@reading names the step).
 */
static int read_rows(struct store *s, sqlite3_stmt **st, const char *sql, int64_t fork_id,
		     void **out, size_t *n, size_t size, void (*fill)(sqlite3_stmt *, void *),
		     const char *reading, char *err, size_t errlen)
{
	size_t cap = 0;
	int rc, r = lazy(s, st, sql, err, errlen);

	if (r)
		return r;
	sqlite3_bind_int64(*st, 1, fork_id);
	while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
		if (pt_grow_array(out, &cap, *n + 1, size)) {
			r = store_fail(s, err, errlen, -ENOMEM, "out of memory");
			break;
		}
		fill(*st, (char *)*out + (*n)++ * size);
	}
	if (!r && rc != SQLITE_DONE)
		r = store_sql_fail(s, err, errlen, rc, reading);
	sqlite3_reset(*st);
	if (r) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* A pte_pass row (before migration 0007). */
static void fill_pass(sqlite3_stmt *st, void *item)
{
	struct pt_pte_pass *p = item;

	p->vma = sqlite3_column_int(st, 0);
	p->ptes = (int32_t)col_neg(st, 1);
	p->start_ns = col_time(st, 2);
	p->hold_ns = col_time(st, 3);
	p->new_pmd = sqlite3_column_int(st, 4);
	p->resumed = sqlite3_column_int(st, 5);
}

/* A vma_copy row (before migration 0009). */
static void fill_vma(sqlite3_stmt *st, void *item)
{
	struct pt_vma_copy *v = item;

	v->start_ns = col_time(st, 0);
	v->dur_ns = col_time(st, 1);
	v->passes = (int32_t)col_neg(st, 2);
	v->ptes = (int32_t)col_neg(st, 3);
	v->huge = sqlite3_column_int(st, 4);
}

int store_fork_passes(struct store *s, int64_t fork_id, struct pt_pte_pass **out, size_t *n,
		      char *err, size_t errlen)
{
	const void *data;
	size_t len;
	int r = packed_row(s, &s->get_pass_blob, "SELECT data FROM fork_pass WHERE fork_id = ?1",
			   fork_id, &data, &len, "reading PTE passes", err, errlen);

	*out = NULL;
	*n = 0;
	if (r == 0)
		return read_rows(
		    s, &s->get_pass_rows,
		    "SELECT vma, ptes, start_ns, hold_ns, new_pmd, resumed FROM pte_pass"
		    " WHERE fork_id = ?1 ORDER BY idx",
		    fork_id, (void **)out, n, sizeof(**out), fill_pass, "reading PTE passes", err,
		    errlen);
	if (r < 0)
		return r;
	r = unpacked(s, store_passes_unpack(data, len, out, n), fork_id, "passes", err, errlen);
	sqlite3_reset(s->get_pass_blob);
	return r;
}

int store_fork_vmas(struct store *s, int64_t fork_id, struct pt_vma_copy **out, size_t *n,
		    char *err, size_t errlen)
{
	const void *data;
	size_t len;
	int r = packed_row(s, &s->get_vma_blob, "SELECT data FROM fork_vma WHERE fork_id = ?1",
			   fork_id, &data, &len, "reading VMA copies", err, errlen);

	*out = NULL;
	*n = 0;
	if (r == 0)
		return read_rows(s, &s->get_vma_rows,
				 "SELECT start_ns, dur_ns, passes, ptes, huge FROM vma_copy"
				 " WHERE fork_id = ?1 ORDER BY idx",
				 fork_id, (void **)out, n, sizeof(**out), fill_vma,
				 "reading VMA copies", err, errlen);
	if (r < 0)
		return r;
	r = unpacked(s, store_vmas_unpack(data, len, out, n), fork_id, "VMA copies", err, errlen);
	sqlite3_reset(s->get_vma_blob);
	return r;
}
