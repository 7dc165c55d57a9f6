/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histogram bins for the rollups: exact below 128 ns, then 64
 * bins per power of two, so a bin's midpoint is within 1/128 (< 1%) of any
 * value in it. 3776 bins cover 0 .. 2^64 ns. Fed with durations by the
 * store's insert path; read by store_stats() and friends, which merge
 * (bin, count) rows from the rollup table and read percentiles off them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

#define SUB (1 << STORE_HIST_SUB_BITS)

int store_hist_bin(uint64_t v)
{
	int e;

	if (v < 2 * SUB)
		return (int)v;
	e = 63 - __builtin_clzll(v);
	return 2 * SUB + (e - STORE_HIST_SUB_BITS - 1) * SUB +
	       (int)((v >> (e - STORE_HIST_SUB_BITS)) & (SUB - 1));
}

uint64_t store_hist_value(int bin)
{
	int e, sub;
	uint64_t low, width;

	if (bin < 2 * SUB)
		return bin < 0 ? 0 : (uint64_t)bin;
	e = STORE_HIST_SUB_BITS + 1 + (bin - 2 * SUB) / SUB;
	sub = (bin - 2 * SUB) % SUB;
	if (e > 63)
		return UINT64_MAX;
	low = (uint64_t)(SUB + sub) << (e - STORE_HIST_SUB_BITS);
	width = (uint64_t)1 << (e - STORE_HIST_SUB_BITS);
	return low + width / 2;
}

uint64_t store_hist_upper(int bin)
{
	int e;

	if (bin < 2 * SUB)
		return bin < 0 ? 0 : (uint64_t)bin;
	e = STORE_HIST_SUB_BITS + 1 + (bin - 2 * SUB) / SUB;
	if (e > 63)
		return UINT64_MAX;
	return ((uint64_t)(SUB + (bin - 2 * SUB) % SUB + 1) << (e - STORE_HIST_SUB_BITS)) - 1;
}

int store_hist_add(struct store_hist *h, int bin, uint64_t n)
{
	size_t i;

	if (bin < -1 || bin > store_hist_bin(UINT64_MAX))
		return -EINVAL;
	i = (size_t)(bin + 1);
	if (i >= h->cap) {
		size_t old = h->cap;

		if (pt_grow_array_from((void **)&h->n, &h->cap, i + 1, sizeof(*h->n), 256))
			return -ENOMEM;
		memset(h->n + old, 0, (h->cap - old) * sizeof(*h->n));
	}
	h->n[i] += n;
	h->count += n;
	return 0;
}

/* Nearest rank: the smallest value with at least ceil(q * N) values <= it. */
static uint64_t rank_value(const struct store_hist *h, uint64_t values, double q)
{
	uint64_t rank = (uint64_t)(q * (double)values), seen = 0;
	size_t i;

	if ((double)rank < q * (double)values)
		rank++;
	if (rank == 0)
		rank = 1;
	for (i = 1; i < h->cap; i++) {
		seen += h->n[i];
		if (seen >= rank)
			return store_hist_value((int)i - 1);
	}
	return 0;
}

void store_hist_result(const struct store_hist *h, struct store_stat *out)
{
	uint64_t nulls = h->cap ? h->n[0] : 0, values = h->count - nulls;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->count = h->count;
	out->nulls = nulls;
	if (!values)
		return;
	out->p50_ns = rank_value(h, values, 0.50);
	out->p90_ns = rank_value(h, values, 0.90);
	out->p99_ns = rank_value(h, values, 0.99);
	out->p999_ns = rank_value(h, values, 0.999);
	for (i = h->cap; i-- > 1;) {
		if (h->n[i]) {
			out->max_ns = store_hist_value((int)i - 1);
			break;
		}
	}
}

void store_hist_free(struct store_hist *h)
{
	if (!h)
		return;
	free(h->n);
	memset(h, 0, sizeof(*h));
}

const int64_t store_res_ns[STORE_RES_COUNT] = {60000000000ll, 3600000000000ll, 86400000000000ll};

static size_t put_varint(unsigned char *out, uint64_t v)
{
	size_t n = 0;

	do {
		out[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	int shift;

	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = *(*p)++;

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EINVAL;
}

size_t store_hist_encode_pair(unsigned char *out, int prev_bin, int bin, int64_t n)
{
	size_t k = put_varint(out, prev_bin == INT32_MIN ? (uint64_t)(bin + 1)
							: (uint64_t)(bin - prev_bin));

	return k + put_varint(out + k, (uint64_t)n);
}

int store_hist_decode(const unsigned char *p, size_t len,
		      int (*fn)(int bin, int64_t n, void *ctx), void *ctx)
{
	const unsigned char *end = p + len;
	int64_t bin = 0;
	bool first = true;
	int r;

	while (p < end) {
		uint64_t d, n;

		if (get_varint(&p, end, &d) || get_varint(&p, end, &n) || n > INT64_MAX)
			return -EINVAL;
		if (first) {
			bin = (int64_t)d - 1;
			first = false;
		} else {
			if (!d)
				return -EINVAL;
			bin += (int64_t)d;
		}
		if (bin > 8192)
			return -EINVAL;
		r = fn((int)bin, (int64_t)n, ctx);
		if (r)
			return r;
	}
	return 0;
}

static int add_pair(int bin, int64_t n, void *ctx)
{
	return store_hist_add(ctx, bin, (uint64_t)n);
}

int store_hist_add_blob(struct store_hist *h, const void *blob, size_t len)
{
	return store_hist_decode(blob, len, add_pair, h);
}
