/* SPDX-License-Identifier: MIT */
/*
 * daemon/btf.c on BTF blobs built here record by record: members inside
 * anonymous unions and structs, typedef'd and const member structs, arrays,
 * bitfields (both encodings), a FWD before the real struct, duplicate names,
 * a FUNC and its FUNC_PROTO, typedef and anonymous-member cycles; and broken
 * blobs: every truncation, cut type sections, bad magic, byte-swapped magic,
 * a wrong version, an unknown kind, dangling ids and name offsets.
 * The real kernel's blob is checked against pahole by test_btf_vmlinux.py.
 * `test_btf --write-seeds DIR` writes the blobs built here: the fuzzer's seeds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "btf.h"
#include "check.h"

enum {
	INT = 1,
	PTR = 2,
	ARRAY = 3,
	STRUCT = 4,
	UNION = 5,
	ENUM = 6,
	FWD = 7,
	TYPEDEF = 8,
	VOLATILE = 9,
	CONST = 10,
	FUNC = 12,
	FUNC_PROTO = 13,
	DECL_TAG = 17,
	TYPE_TAG = 18,
};

/* A blob under construction: type records and strings, then a header in front. */
struct blob {
	uint8_t types[8192];
	size_t tlen;
	char strs[4096];
	size_t slen;
	uint32_t nr;
	size_t start[256]; /* start[id]: where record id begins in types */
};

static void put32(struct blob *b, uint32_t v)
{
	memcpy(b->types + b->tlen, &v, 4);
	b->tlen += 4;
}

static uint32_t str(struct blob *b, const char *s)
{
	uint32_t off = (uint32_t)b->slen;

	if (!*s)
		return 0;
	memcpy(b->strs + b->slen, s, strlen(s) + 1);
	b->slen += strlen(s) + 1;
	return off;
}

/* Starts a record; its kind-specific data follows with put32/member/param. */
static uint32_t type(struct blob *b, const char *name, uint32_t kind, uint32_t vlen, int kflag,
		     uint32_t size_type)
{
	b->start[++b->nr] = b->tlen;
	put32(b, str(b, name));
	put32(b, (kind << 24) | vlen | ((uint32_t)kflag << 31));
	put32(b, size_type);
	return b->nr;
}

static void member(struct blob *b, const char *name, uint32_t t, uint32_t bit_off)
{
	put32(b, str(b, name));
	put32(b, t);
	put32(b, bit_off);
}

static uint32_t int_type(struct blob *b, const char *name, uint32_t size, uint32_t bits)
{
	uint32_t id = type(b, name, INT, 0, 0, size);

	put32(b, bits);
	return id;
}

static void blob_init(struct blob *b)
{
	memset(b, 0, sizeof(*b));
	b->slen = 1; /* offset 0 is the empty name */
}

/* The blob with its header (type section first, strings after) into @out. */
static size_t blob_build(const struct blob *b, uint8_t *out)
{
	uint32_t hdr[6] = {0x0001eb9f,	     24, 0, (uint32_t)b->tlen, (uint32_t)b->tlen,
			   (uint32_t)b->slen};

	memcpy(out, hdr, sizeof(hdr));
	memcpy(out + 24, b->types, b->tlen);
	memcpy(out + 24 + b->tlen, b->strs, b->slen);
	return 24 + b->tlen + b->slen;
}

static struct pd_btf *load(const struct blob *bl)
{
	static uint8_t buf[16384];
	struct pd_btf *b = NULL;
	char err[256] = "";
	size_t len = blob_build(bl, buf);

	if (pd_btf_load_mem(buf, len, &b, err, sizeof(err)) < 0)
		fprintf(stderr, "load: %s\n", err);
	return b;
}

/* The test's struct world, kernel-like (ids in comments). */
static void build_world(struct blob *b)
{
	uint32_t i32, ulong, anon_s, anon_u, info, cinfo, tinfo, arr, task, fwd, bits, u3, odd;
	uint32_t la, lb, proto;

	blob_init(b);
	i32 = int_type(b, "int", 4, (1u << 24) | 32);
	ulong = int_type(b, "long unsigned int", 8, 64);
	fwd = type(b, "task", FWD, 0, 0, 0);
	(void)fwd;
	anon_s = type(b, "", STRUCT, 2, 0, 16); /* struct { a; b; } */
	member(b, "a", ulong, 0);
	member(b, "b", ulong, 64);
	anon_u = type(b, "", UNION, 2, 0, 16); /* union { struct {a; b;}; alias; } */
	member(b, "", anon_s, 0);
	member(b, "alias", ulong, 0);
	info = type(b, "info", STRUCT, 2, 0, 16);
	member(b, "pcount", ulong, 0);
	member(b, "delay", ulong, 64);
	cinfo = type(b, "", CONST, 0, 0, info);
	tinfo = type(b, "info_t", TYPEDEF, 0, 0, cinfo);
	arr = type(b, "", ARRAY, 0, 0, 0);
	put32(b, i32); /* elem type */
	put32(b, i32); /* index type */
	put32(b, 5);   /* nelems */
	task = type(b, "task", STRUCT, 6, 0, 96);
	member(b, "pid", i32, 0);
	member(b, "", anon_u, 64);	     /* bytes 8..24 */
	member(b, "info", tinfo, 192);	     /* bytes 24..40 */
	member(b, "parent", b->nr + 1, 320); /* byte 40, the PTR below */
	member(b, "comm", arr, 384);	     /* bytes 48..68 */
	member(b, "odd", i32, 548);	     /* bit 548: not byte-aligned */
	type(b, "", PTR, 0, 0, task);
	bits = type(b, "bits", STRUCT, 3, 1, 8); /* kind_flag: bitfield sizes in offsets */
	member(b, "x", i32, (3u << 24) | 0);
	member(b, "y", i32, (0u << 24) | 32);
	member(b, "", i32, (5u << 24) | 3); /* anonymous padding bitfield */
	u3 = int_type(b, "", 4, 3);	    /* old encoding: a 3-bit int */
	odd = type(b, "oldbits", STRUCT, 1, 0, 4);
	member(b, "z", u3, 0);
	(void)bits;
	(void)odd;
	la = type(b, "loop_a", TYPEDEF, 0, 0, b->nr + 2);
	lb = type(b, "loop_b", TYPEDEF, 0, 0, la);
	type(b, "cyc", STRUCT, 1, 0, 8);
	member(b, "m", lb, 0);
	proto = type(b, "", FUNC_PROTO, 3, 0, i32);
	put32(b, str(b, "dst_vma"));
	put32(b, ulong);
	put32(b, str(b, "src_vma"));
	put32(b, ulong);
	put32(b, 0); /* a variadic tail: no name, type void */
	put32(b, 0);
	type(b, "copy_page_range", FUNC, 0, 0, proto);
	type(b, "task", STRUCT, 1, 0, 4); /* a second of the name: the first wins */
	member(b, "pid", i32, 16);
}

static void check_member(const struct pd_btf *b, const char *t, const char *path, int rc,
			 uint32_t off, uint32_t size)
{
	uint32_t o = 999, s = 999;
	char err[256] = "";
	int got = pd_btf_member(b, t, path, &o, &s, err, sizeof(err));

	if (got != rc || (rc == 0 && (o != off || s != size)))
		fprintf(stderr, "%s.%s: rc %d off %u size %u (%s)\n", t, path, got, o, s, err);
	CHECK_EQ(got, rc);
	if (rc == 0) {
		CHECK_EQ(o, off);
		CHECK_EQ(s, size);
	} else {
		CHECK(err[0] != '\0');
	}
}

static void test_members(void)
{
	struct blob bl;
	struct pd_btf *b;
	uint32_t off, size;
	char err[256];

	build_world(&bl);
	b = load(&bl);
	CHECK(b != NULL);
	if (!b)
		return;
	check_member(b, "task", "pid", 0, 0, 4);
	check_member(b, "task", "a", 0, 8, 8); /* in a struct in an anonymous union */
	check_member(b, "task", "b", 0, 16, 8);
	check_member(b, "task", "alias", 0, 8, 8);
	check_member(b, "task", "info", 0, 24, 16); /* typedef -> const -> struct */
	check_member(b, "task", "info.pcount", 0, 24, 8);
	check_member(b, "task", "info.delay", 0, 32, 8);
	check_member(b, "task", "parent", 0, 40, 8); /* pointer: long's size */
	check_member(b, "task", "comm", 0, 48, 20);  /* int[5] */
	check_member(b, "task", "odd", -EINVAL, 0, 0);
	check_member(b, "task", "parent.pid", -EINVAL, 0, 0); /* through a pointer */
	check_member(b, "task", "comm.x", -EINVAL, 0, 0);     /* through an array */
	check_member(b, "task", "nope", -ENOENT, 0, 0);
	check_member(b, "task", "info.nope", -ENOENT, 0, 0);
	check_member(b, "task", "info.", -EINVAL, 0, 0);
	check_member(b, "task", ".info", -EINVAL, 0, 0);
	check_member(b, "task", "", -EINVAL, 0, 0);
	check_member(b, "nosuch", "pid", -ENOENT, 0, 0);
	check_member(b, "info_t", "pcount", -ENOENT, 0, 0); /* a typedef is not a struct */
	check_member(b, "bits", "x", -EINVAL, 0, 0);	    /* kind_flag bitfield */
	check_member(b, "bits", "y", 0, 4, 4);		    /* kind_flag, not a bitfield */
	check_member(b, "oldbits", "z", -EINVAL, 0, 0);	    /* 3-bit int */
	check_member(b, "cyc", "m", -EINVAL, 0, 0);	    /* typedef cycle: no size */
	check_member(b, "cyc", "m.x", -EINVAL, 0, 0);
	/* the message names the struct that lacks the member */
	CHECK_EQ(pd_btf_member(b, "task", "info.nope", &off, &size, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "struct info has no member nope") != NULL);
	pd_btf_free(b);
}

static void test_params(void)
{
	struct blob bl;
	struct pd_btf *b;
	char err[256];
	int idx = 0;

	build_world(&bl);
	b = load(&bl);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK_EQ(pd_btf_param(b, "copy_page_range", "src_vma", &idx, err, sizeof(err)), 0);
	CHECK_EQ(idx, 2);
	CHECK_EQ(pd_btf_param(b, "copy_page_range", "dst_vma", &idx, err, sizeof(err)), 0);
	CHECK_EQ(idx, 1);
	CHECK_EQ(pd_btf_param(b, "copy_page_range", "vma", &idx, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no parameter vma") != NULL);
	CHECK_EQ(pd_btf_param(b, "copy_page_range", "", &idx, err, sizeof(err)), -ENOENT);
	CHECK_EQ(pd_btf_param(b, "dup_mmap", "mm", &idx, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "dup_mmap") != NULL);
	CHECK_EQ(pd_btf_param(b, "task", "pid", &idx, err, sizeof(err)), -ENOENT); /* no FUNC */
	pd_btf_free(b);
}

static void build_fwd_union(struct blob *b)
{
	uint32_t l;

	blob_init(b);
	l = int_type(b, "long int", 4, (1u << 24) | 32);
	type(b, "only_fwd", FWD, 0, 0, 0);
	type(b, "u", UNION, 2, 0, 4);
	member(b, "p", b->nr + 1, 0);
	member(b, "v", b->nr + 2, 0);
	type(b, "", PTR, 0, 0, l);
	type(b, "", VOLATILE, 0, 0, b->nr + 2); /* -> the type tag -> long */
	type(b, "tagged", TYPE_TAG, 0, 0, l);
}

/* A FWD alone does not count; a union is found like a struct; 4-byte long gives 4-byte pointers. */
static void test_fwd_union_ptr(void)
{
	struct blob bl;
	struct pd_btf *b;
	uint32_t off, size;
	char err[256];

	build_fwd_union(&bl);
	b = load(&bl);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK_EQ(pd_btf_member(b, "only_fwd", "x", &off, &size, err, sizeof(err)), -ENOENT);
	CHECK_EQ(pd_btf_member(b, "u", "p", &off, &size, err, sizeof(err)), 0);
	CHECK_EQ(size, 4);
	CHECK_EQ(pd_btf_member(b, "u", "v", &off, &size, err, sizeof(err)), 0); /* volatile tag */
	CHECK_EQ(size, 4);
	pd_btf_free(b);
}

static void build_anon_cycle(struct blob *b)
{
	blob_init(b);
	type(b, "self", STRUCT, 200, 0, 8);
	for (int i = 0; i < 200; i++)
		member(b, "", 1, 0);
}

/* Anonymous members that hold themselves: a bounded search, not a hang or a stack overflow. */
static void test_anon_cycle(void)
{
	struct blob bl;
	struct pd_btf *b;
	uint32_t off, size;
	char err[256];

	build_anon_cycle(&bl);
	b = load(&bl);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK_EQ(pd_btf_member(b, "self", "x", &off, &size, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "deep") != NULL);
	pd_btf_free(b);
}

static int load_err(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct pd_btf *b = NULL;
	int rc = pd_btf_load_mem(buf, len, &b, err, errlen);

	CHECK(rc < 0 ? b == NULL : b != NULL);
	pd_btf_free(b);
	return rc;
}

static void test_header(void)
{
	static uint8_t buf[16384];
	struct blob bl;
	char err[256];
	size_t len;
	uint32_t v;

	build_world(&bl);
	len = blob_build(&bl, buf);
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), 0);
	/* every truncation cuts the string section that ends the blob */
	for (size_t n = 0; n < len; n++)
		CHECK_EQ(load_err(buf, n, err, sizeof(err)), -EINVAL);
	buf[0] = 0xeb, buf[1] = 0x9f; /* the magic's bytes the other way round */
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "big-endian") != NULL);
	buf[0] = 0x7f, buf[1] = 'E';
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "magic") != NULL);
	blob_build(&bl, buf);
	buf[2] = 2;
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "version") != NULL);
	blob_build(&bl, buf);
	v = (uint32_t)len + 1; /* hdr_len past the end */
	memcpy(buf + 4, &v, 4);
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
	blob_build(&bl, buf);
	v = 0xfffffff0u; /* str_off that wraps in 32 bits */
	memcpy(buf + 16, &v, 4);
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
	blob_build(&bl, buf);
	buf[len - 1] = 'x'; /* strings not NUL-terminated */
	CHECK_EQ(load_err(buf, len, err, sizeof(err)), -EINVAL);
}

/* The type section's length cut at every byte: refused unless it ends between records. */
static void test_cut_types(void)
{
	static uint8_t buf[16384];
	struct blob bl;
	char err[256];
	size_t len;

	build_world(&bl);
	len = blob_build(&bl, buf);
	for (uint32_t cut = 0; cut < bl.tlen; cut++) {
		bool boundary = false;

		for (uint32_t id = 1; id <= bl.nr; id++)
			boundary |= bl.start[id] == cut;
		blob_build(&bl, buf);
		memcpy(buf + 12, &cut, 4); /* type_len */
		CHECK_EQ(load_err(buf, len, err, sizeof(err)), boundary || !cut ? 0 : -EINVAL);
	}
}

static void build_bad(struct blob *b)
{
	uint32_t i32;

	blob_init(b);
	i32 = int_type(b, "int", 4, 32);
	type(b, "s", STRUCT, 3, 0, 8);
	member(b, "dangling", 77, 0);
	member(b, "ok", i32, 32);
	put32(b, 1u << 30); /* a name offset past the string section */
	put32(b, i32);
	put32(b, 0);
	type(b, "tag", DECL_TAG, 0, 0, i32);
	put32(b, (uint32_t)-1); /* component_idx */
	type(b, "e", ENUM, 1, 0, 4);
	put32(b, str(b, "E0"));
	put32(b, 0);
}

/* A kind past ENUM64, a dangling member type and a member name past the strings. */
static void test_bad_records(void)
{
	struct blob bl;
	struct pd_btf *b;
	uint32_t off, size;
	char err[256];

	blob_init(&bl);
	type(&bl, "x", 20, 0, 0, 0);
	CHECK(load(&bl) == NULL);
	build_bad(&bl);
	b = load(&bl);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK_EQ(pd_btf_member(b, "s", "dangling", &off, &size, err, sizeof(err)), -EINVAL);
	CHECK_EQ(pd_btf_member(b, "s", "ok", &off, &size, err, sizeof(err)), 0);
	CHECK_EQ(off, 4);
	CHECK_EQ(pd_btf_member(b, "s", "missing", &off, &size, err, sizeof(err)), -EINVAL);
	CHECK_EQ(pd_btf_count(b), 4);
	pd_btf_free(b);
}

/* The blobs above as files in @dir: the fuzzer's seeds (tests/fuzz/corpus_btf). */
static int write_seeds(const char *dir)
{
	static void (*const builders[])(struct blob *) = {build_world, build_fwd_union,
							  build_anon_cycle, build_bad};
	static const char *const names[] = {"world", "fwd_union", "anon_cycle", "bad_records"};
	static uint8_t buf[16384];
	static struct blob bl;
	char path[4096];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len;
		FILE *f;

		builders[i](&bl);
		len = blob_build(&bl, buf);
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[256];
	struct pd_btf *b = NULL;

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);

	test_members();
	test_params();
	test_fwd_union_ptr();
	test_anon_cycle();
	test_header();
	test_cut_types();
	test_bad_records();
	CHECK_EQ(pd_btf_load("/nonexistent/btf", &b, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nonexistent/btf") != NULL);
	TEST_DONE();
}
