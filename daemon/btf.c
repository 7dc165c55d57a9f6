/* SPDX-License-Identifier: MIT */
/*
 * The BTF reader (btf.h): loads a blob, indexes its type records by id in
 * one checked pass, and answers member and parameter questions by walking
 * records through that index. Written from the format of the kernel's
 * include/uapi/linux/btf.h and Documentation/bpf/btf.rst; every read of the
 * blob goes through rd32() over an offset checked against its section.
 */
#include "btf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BTF_MAGIC 0xeB9F
#define BTF_MAGIC_SWAPPED 0x9FeB
#define BTF_HDR_LEN 24u	 /* magic .. str_len: the part of the header this reader knows */
#define BTF_TYPE_LEN 12u /* struct btf_type: name_off, info, size_or_type */
#define MAX_COMPONENT 256
/* Members one path component may visit, anonymous ones' included (task_struct has ~300). */
#define MEMBER_BUDGET (1u << 20)

enum btf_kind {
	KIND_VOID,
	KIND_INT,
	KIND_PTR,
	KIND_ARRAY,
	KIND_STRUCT,
	KIND_UNION,
	KIND_ENUM,
	KIND_FWD,
	KIND_TYPEDEF,
	KIND_VOLATILE,
	KIND_CONST,
	KIND_RESTRICT,
	KIND_FUNC,
	KIND_FUNC_PROTO,
	KIND_VAR,
	KIND_DATASEC,
	KIND_FLOAT,
	KIND_DECL_TAG,
	KIND_TYPE_TAG,
	KIND_ENUM64,
	KIND_MAX = KIND_ENUM64,
};

struct pd_btf {
	uint8_t *data; /* the whole blob, owned */
	size_t len;
	const uint8_t *types; /* type section */
	uint32_t types_len;
	const char *strs; /* string section; its last byte is NUL */
	uint32_t strs_len;
	uint32_t *off; /* off[id]: the record's offset in the type section, 1 <= id <= nr */
	uint32_t nr;
	uint32_t ptr_size;
};

/* One type record; its kind-specific data (vlen entries) follows at @extra. */
struct rec {
	uint32_t id, name_off, kind, vlen, size_type;
	bool kflag;
	const uint8_t *extra;
};

/* A member found in a struct: its type, and where it starts in bits from the outer struct. */
struct hit {
	uint32_t type;
	uint64_t bit_off;
	uint32_t bitfield_bits; /* from a kind_flag struct's member offset; 0 = none */
};

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Bytes of kind-specific data after a record of @kind with @vlen entries; -1: unknown kind. */
static int64_t kind_extra(uint32_t kind, uint32_t vlen)
{
	switch (kind) {
	case KIND_INT:
	case KIND_VAR:
	case KIND_DECL_TAG:
		return 4;
	case KIND_ARRAY:
		return 12;
	case KIND_STRUCT:
	case KIND_UNION:
	case KIND_DATASEC:
	case KIND_ENUM64:
		return 12 * (int64_t)vlen;
	case KIND_ENUM:
	case KIND_FUNC_PROTO:
		return 8 * (int64_t)vlen;
	case KIND_PTR:
	case KIND_FWD:
	case KIND_TYPEDEF:
	case KIND_VOLATILE:
	case KIND_CONST:
	case KIND_RESTRICT:
	case KIND_FUNC:
	case KIND_FLOAT:
	case KIND_TYPE_TAG:
		return 0;
	default:
		return -1;
	}
}

/*
 * Walks the type section record by record, checking each one's bounds and
 * kind; stores each record's offset in @off[1..] when @off is not NULL.
 * Returns the number of records or -EINVAL.
 */
static int64_t walk_types(const struct pd_btf *b, uint32_t *off, char *err, size_t errlen)
{
	uint64_t pos = 0;
	int64_t n = 0;

	while (pos < b->types_len) {
		uint32_t info, kind;
		int64_t extra;

		if (b->types_len - pos < BTF_TYPE_LEN)
			return fail(err, errlen, -EINVAL, "BTF type %lld truncated at byte %llu",
				    (long long)n + 1, (unsigned long long)pos);
		info = rd32(b->types + pos + 4);
		kind = (info >> 24) & 0x1f;
		extra = kind_extra(kind, info & 0xffff);
		if (extra < 0)
			return fail(err, errlen, -EINVAL,
				    "BTF type %lld has kind %u, unknown to this reader "
				    "(its record size cannot be known)",
				    (long long)n + 1, kind);
		if (b->types_len - pos - BTF_TYPE_LEN < (uint64_t)extra)
			return fail(err, errlen, -EINVAL, "BTF type %lld (kind %u) truncated",
				    (long long)n + 1, kind);
		if (n >= UINT32_MAX - 1)
			return fail(err, errlen, -EINVAL, "too many BTF types");
		n++;
		if (off)
			off[n] = (uint32_t)pos;
		pos += BTF_TYPE_LEN + (uint64_t)extra;
	}
	return n;
}

/* Checks the header and finds the sections; -EINVAL with a message when malformed. */
static int check_header(struct pd_btf *b, char *err, size_t errlen)
{
	const uint8_t *d = b->data;
	uint16_t magic;
	uint32_t hdr_len, type_off, type_len, str_off, str_len;
	uint64_t room;

	if (b->len < BTF_HDR_LEN)
		return fail(err, errlen, -EINVAL,
			    "BTF blob of %zu bytes is shorter than its header", b->len);
	memcpy(&magic, d, sizeof(magic));
	if (magic == BTF_MAGIC_SWAPPED)
		return fail(err, errlen, -EINVAL, "big-endian BTF not supported");
	if (magic != BTF_MAGIC)
		return fail(err, errlen, -EINVAL, "not BTF (magic 0x%04x, expected 0x%04x)", magic,
			    BTF_MAGIC);
	if (d[2] != 1)
		return fail(err, errlen, -EINVAL, "BTF version %u, only 1 is supported", d[2]);
	hdr_len = rd32(d + 4);
	type_off = rd32(d + 8);
	type_len = rd32(d + 12);
	str_off = rd32(d + 16);
	str_len = rd32(d + 20);
	if (hdr_len < BTF_HDR_LEN || hdr_len > b->len)
		return fail(err, errlen, -EINVAL,
			    "BTF header length %u out of range (blob %zu bytes)", hdr_len, b->len);
	room = b->len - hdr_len;
	if ((uint64_t)type_off + type_len > room || (uint64_t)str_off + str_len > room)
		return fail(err, errlen, -EINVAL,
			    "BTF sections (types %u+%u, strings %u+%u) past the blob's %llu bytes",
			    type_off, type_len, str_off, str_len, (unsigned long long)room);
	if (!str_len || d[hdr_len + str_off + str_len - 1] != '\0')
		return fail(err, errlen, -EINVAL, "BTF string section does not end with NUL");
	b->types = d + hdr_len + type_off;
	b->types_len = type_len;
	b->strs = (const char *)d + hdr_len + str_off;
	b->strs_len = str_len;
	return 0;
}

/* The string at @off, or NULL when @off is outside the string section. */
static const char *str_at(const struct pd_btf *b, uint32_t off)
{
	return off < b->strs_len ? b->strs + off : NULL;
}

/* Record @id; -ENOENT for void (0) and ids past the last. */
static int get_rec(const struct pd_btf *b, uint32_t id, struct rec *r)
{
	const uint8_t *p;
	uint32_t info;

	if (id == 0 || id > b->nr)
		return -ENOENT;
	p = b->types + b->off[id];
	info = rd32(p + 4);
	r->id = id;
	r->name_off = rd32(p);
	r->kind = (info >> 24) & 0x1f;
	r->vlen = info & 0xffff;
	r->kflag = info >> 31;
	r->size_type = rd32(p + 8);
	r->extra = p + BTF_TYPE_LEN;
	return 0;
}

static bool name_is(const struct pd_btf *b, const struct rec *r, const char *name)
{
	const char *s = str_at(b, r->name_off);

	return s && strcmp(s, name) == 0;
}

/* The size of `long` when the blob has it (a pointer's size on Linux), else the host's. */
static uint32_t infer_ptr_size(const struct pd_btf *b)
{
	static const char *const longs[] = {"long int", "long unsigned int", "unsigned long",
					    "long", "unsigned long int"};
	struct rec r;

	for (uint32_t id = 1; id <= b->nr; id++) {
		if (get_rec(b, id, &r) || r.kind != KIND_INT)
			continue;
		for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
			if (name_is(b, &r, longs[i]) && (r.size_type == 4 || r.size_type == 8))
				return r.size_type;
	}
	return sizeof(void *);
}

/* Takes ownership of @data (malloc'ed, @len bytes) whatever the outcome. */
static int load_owned(uint8_t *data, size_t len, struct pd_btf **out, char *err, size_t errlen)
{
	struct pd_btf *b = calloc(1, sizeof(*b));
	int64_t n;
	int rc;

	*out = NULL;
	if (!b) {
		free(data);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	b->data = data;
	b->len = len;
	rc = check_header(b, err, errlen);
	if (rc < 0)
		goto out;
	n = walk_types(b, NULL, err, errlen);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	b->nr = (uint32_t)n;
	b->off = calloc((size_t)n + 1, sizeof(*b->off));
	if (!b->off) {
		rc = fail(err, errlen, -ENOMEM, "out of memory indexing %lld BTF types",
			  (long long)n);
		goto out;
	}
	(void)walk_types(b, b->off, NULL, 0); /* the same walk, which just succeeded */
	b->ptr_size = infer_ptr_size(b);
	*out = b;
	b = NULL;
out:
	pd_btf_free(b);
	return rc;
}

int pd_btf_load_mem(const void *data, size_t len, struct pd_btf **out, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);

	*out = NULL;
	if (!copy)
		return fail(err, errlen, -ENOMEM, "out of memory for %zu bytes of BTF", len);
	if (len)
		memcpy(copy, data, len);
	return load_owned(copy, len, out, err, errlen);
}

/* Reads all of @fd (a sysfs file may not tell its size) into *@buf: its length or -errno. */
static int64_t read_all(int fd, uint8_t **buf, const char *path, char *err, size_t errlen)
{
	struct stat st;
	size_t cap = 1u << 20, len = 0;
	uint8_t *p, *q;

	if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size < PD_BTF_MAX_BYTES)
		cap = (size_t)st.st_size + 1; /* one byte more: EOF seen without growing */
	p = malloc(cap);
	for (;;) {
		ssize_t got;

		if (p && len == cap) {
			if (cap > PD_BTF_MAX_BYTES) {
				free(p);
				return fail(err, errlen, -EFBIG, "%s is larger than %u bytes", path,
					    PD_BTF_MAX_BYTES);
			}
			cap = cap * 2 > PD_BTF_MAX_BYTES ? PD_BTF_MAX_BYTES + 1 : cap * 2;
			q = realloc(p, cap);
			if (!q)
				free(p);
			p = q;
		}
		if (!p)
			return fail(err, errlen, -ENOMEM, "out of memory reading %s", path);
		got = read(fd, p + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;

			free(p);
			return fail(err, errlen, -e, "reading %s: %s", path, strerror(e));
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	*buf = p;
	return (int64_t)len;
}

int pd_btf_load(const char *path, struct pd_btf **out, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	int64_t len;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return fail(err, errlen, -e, "opening %s: %s", path, strerror(e));
	}
	len = read_all(fd, &buf, path, err, errlen);
	close(fd);
	if (len < 0)
		return (int)len;
	return load_owned(buf, (size_t)len, out, err, errlen);
}

void pd_btf_free(struct pd_btf *b)
{
	if (!b)
		return;
	free(b->off);
	free(b->data);
	free(b);
}

uint32_t pd_btf_count(const struct pd_btf *b)
{
	return b ? b->nr : 0;
}

/* Follows typedef/const/volatile/restrict/type_tag from @id to the type they name. */
static int resolve(const struct pd_btf *b, uint32_t id, struct rec *r)
{
	for (int depth = 0; depth <= PD_BTF_MAX_DEPTH; depth++) {
		if (get_rec(b, id, r))
			return id ? -EINVAL : -ENOENT; /* a dangling id, or void */
		switch (r->kind) {
		case KIND_TYPEDEF:
		case KIND_CONST:
		case KIND_VOLATILE:
		case KIND_RESTRICT:
		case KIND_TYPE_TAG:
			id = r->size_type;
			break;
		default:
			return 0;
		}
	}
	return -ELOOP;
}

/* The byte size of type @id (after modifiers); @depth bounds nested arrays. */
static int type_size(const struct pd_btf *b, uint32_t id, int depth, uint32_t *size)
{
	struct rec r;
	uint32_t elem;
	uint64_t total;
	int rc;

	if (depth > PD_BTF_MAX_DEPTH)
		return -ELOOP;
	rc = resolve(b, id, &r);
	if (rc < 0)
		return rc == -ENOENT ? -EINVAL : rc; /* void has no size */
	switch (r.kind) {
	case KIND_INT:
	case KIND_STRUCT:
	case KIND_UNION:
	case KIND_ENUM:
	case KIND_ENUM64:
	case KIND_FLOAT:
		*size = r.size_type;
		return 0;
	case KIND_PTR:
		*size = b->ptr_size;
		return 0;
	case KIND_ARRAY:
		rc = type_size(b, rd32(r.extra), depth + 1, &elem);
		if (rc < 0)
			return rc;
		total = (uint64_t)elem * rd32(r.extra + 8);
		if (total > UINT32_MAX)
			return -EINVAL;
		*size = (uint32_t)total;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Whether a member of type @type (no kind_flag bitfield size) is a bitfield of an INT. */
static bool int_bitfield(const struct pd_btf *b, uint32_t type)
{
	struct rec r;
	uint32_t enc;

	if (resolve(b, type, &r) < 0 || r.kind != KIND_INT)
		return false;
	enc = rd32(r.extra);
	return ((enc >> 16) & 0xff) != 0 || (enc & 0xff) != (uint64_t)r.size_type * 8;
}

/*
 * Finds the member @name in struct/union @s (at @base bits from the outer
 * struct), looking into anonymous struct/union members down to @depth.
 * *@budget bounds the members visited in all (a hostile blob could nest
 * 65535 anonymous members 32 deep). Returns 0, -ENOENT, -EINVAL for a
 * malformed record or -ELOOP.
 */
static int find_member(const struct pd_btf *b, const struct rec *s, const char *name, uint64_t base,
		       int depth, uint32_t *budget, struct hit *h)
{
	if (depth > PD_BTF_MAX_DEPTH)
		return -ELOOP;
	for (uint32_t i = 0; i < s->vlen; i++) {
		const uint8_t *m = s->extra + 12 * (size_t)i;
		const char *mname = str_at(b, rd32(m));
		uint32_t type = rd32(m + 4), off = rd32(m + 8), bits = 0;
		struct rec r;
		int rc;

		if (!mname)
			return -EINVAL;
		if (!(*budget)--)
			return -ELOOP;
		if (s->kflag) {
			bits = off >> 24;
			off &= 0xffffff;
		}
		if (*mname) {
			if (strcmp(mname, name))
				continue;
			*h = (struct hit){
			    .type = type, .bit_off = base + off, .bitfield_bits = bits};
			return 0;
		}
		if (resolve(b, type, &r) < 0 || (r.kind != KIND_STRUCT && r.kind != KIND_UNION))
			continue; /* an anonymous bitfield (padding) or worse: holds no names */
		rc = find_member(b, &r, name, base + off, depth + 1, budget, h);
		if (rc != -ENOENT)
			return rc;
	}
	return -ENOENT;
}

/* The first STRUCT or UNION named @name. */
static int find_struct(const struct pd_btf *b, const char *name, struct rec *r)
{
	for (uint32_t id = 1; id <= b->nr; id++)
		if (!get_rec(b, id, r) && (r->kind == KIND_STRUCT || r->kind == KIND_UNION) &&
		    name_is(b, r, name))
			return 0;
	return -ENOENT;
}

/* The next component of @path at *@pos into @comp; -EINVAL when empty or too long. */
static int next_component(const char *path, size_t *pos, char comp[MAX_COMPONENT])
{
	size_t n = strcspn(path + *pos, ".");

	if (n == 0 || n >= MAX_COMPONENT)
		return -EINVAL;
	memcpy(comp, path + *pos, n);
	comp[n] = '\0';
	*pos += n;
	if (path[*pos] == '.' && !path[++*pos])
		return -EINVAL; /* a trailing dot */
	return 0;
}

/* The message of find_member's error @rc while looking for @comp in @s, on @type's @path. */
static int member_error(const struct pd_btf *b, int rc, const struct rec *s, const char *type,
			const char *path, const char *comp, char *err, size_t errlen)
{
	const char *in = str_at(b, s->name_off);

	if (rc == -ENOENT)
		return fail(err, errlen, -ENOENT, "%s.%s: %s %s has no member %s", type, path,
			    s->kind == KIND_UNION ? "union" : "struct",
			    in && *in ? in : "(anonymous)", comp);
	if (rc == -ELOOP)
		return fail(
		    err, errlen, -EINVAL,
		    "struct %s member %s: types nested over %d deep or too many members (a cycle?)",
		    type, path, PD_BTF_MAX_DEPTH);
	return fail(err, errlen, -EINVAL, "struct %s member %s: malformed BTF record", type, path);
}

/* Checks the last member of a path (@h) and gives its byte offset and size. */
static int member_result(const struct pd_btf *b, const struct hit *h, const char *type,
			 const char *path, uint32_t *off, uint32_t *size, char *err, size_t errlen)
{
	int rc;

	if (h->bitfield_bits || int_bitfield(b, h->type))
		return fail(err, errlen, -EINVAL, "%s.%s is a bitfield", type, path);
	if (h->bit_off % 8)
		return fail(err, errlen, -EINVAL, "%s.%s is not byte-aligned (bit %llu)", type,
			    path, (unsigned long long)h->bit_off);
	if (h->bit_off / 8 > UINT32_MAX)
		return fail(err, errlen, -EINVAL, "%s.%s: offset out of range", type, path);
	rc = type_size(b, h->type, 0, size);
	if (rc < 0)
		return fail(err, errlen, -EINVAL, "%s.%s: the member's type has no size (%s)", type,
			    path,
			    rc == -ELOOP ? "types nested too deep, a cycle?" : "void or malformed");
	*off = (uint32_t)(h->bit_off / 8);
	return 0;
}

int pd_btf_member(const struct pd_btf *b, const char *type, const char *path, uint32_t *off,
		  uint32_t *size, char *err, size_t errlen)
{
	char comp[MAX_COMPONENT];
	struct hit h = {0};
	struct rec s;
	uint64_t base = 0;
	uint32_t budget;
	size_t pos = 0;
	int rc;

	if (find_struct(b, type, &s))
		return fail(err, errlen, -ENOENT, "no struct or union %s in BTF", type);
	for (;;) {
		if (next_component(path, &pos, comp))
			return fail(err, errlen, -EINVAL, "bad member path '%s'", path);
		budget = MEMBER_BUDGET;
		rc = find_member(b, &s, comp, base, 0, &budget, &h);
		if (rc < 0)
			return member_error(b, rc, &s, type, path, comp, err, errlen);
		if (!path[pos])
			return member_result(b, &h, type, path, off, size, err, errlen);
		rc = resolve(b, h.type, &s);
		if (rc == -ELOOP)
			return member_error(b, rc, &s, type, path, comp, err, errlen);
		if (h.bitfield_bits || rc < 0 || (s.kind != KIND_STRUCT && s.kind != KIND_UNION))
			return fail(err, errlen, -EINVAL,
				    "%s.%s: member %s is not a struct or union (a pointer or "
				    "array cannot be gone through)",
				    type, path, comp);
		base = h.bit_off;
	}
}

int pd_btf_param(const struct pd_btf *b, const char *func, const char *param, int *index, char *err,
		 size_t errlen)
{
	struct rec f, proto;

	for (uint32_t id = 1; id <= b->nr; id++) {
		if (get_rec(b, id, &f) || f.kind != KIND_FUNC || !name_is(b, &f, func))
			continue;
		if (get_rec(b, f.size_type, &proto) || proto.kind != KIND_FUNC_PROTO)
			return fail(err, errlen, -EINVAL, "function %s: type %u is not a prototype",
				    func, f.size_type);
		for (uint32_t i = 0; i < proto.vlen; i++) {
			const char *name = str_at(b, rd32(proto.extra + 8 * (size_t)i));

			if (name && *name && strcmp(name, param) == 0) {
				*index = (int)i + 1;
				return 0;
			}
		}
		return fail(err, errlen, -ENOENT, "function %s has no parameter %s", func, param);
	}
	return fail(err, errlen, -ENOENT, "no function %s in BTF", func);
}
