/* SPDX-License-Identifier: MIT */
/*
 * Our own walk of a trace.dat's flyrecord data (dat_fly.h): the file's v7
 * header and option sections read to find the top buffer's per-CPU data,
 * then each CPU's ring-buffer pages read as libtraceevent's kbuffer reads
 * them, and the CPUs merged as tracecmd_iterate_events() merges them.
 * Sized for the helper's one pass over files of hundreds of MB: the file is
 * mapped, a CPU holds one decompressed chunk, a record costs a few loads and
 * compares (no allocation, no copy).
 *
 * The layout, as trace-cmd 3.x writes it (all numbers in the file's byte
 * order, little-endian here):
 *   head     "\x17\x08\x44tracing", "7\0", endian byte, long size byte,
 *            u32 page size, compression name "\0", its version "\0",
 *            u64 offset of the first options section
 *   section  u16 id, u16 flags (bit 0: compressed), u32 name, u64 size, data
 *   options  (section id 0) u16 option id, u32 size, data; DONE holds the
 *            u64 offset of the next options section (0: the last)
 *   BUFFER   u64 offset of its data section, name "\0", clock "\0",
 *            u32 page size, u32 cpus, per CPU u32 id, u64 offset, u64 size
 *   CPU data uncompressed: pages; compressed: u32 chunks, per chunk u32
 *            compressed size, u32 size, the compressed bytes (whole pages);
 *            the table's size in BUFFER leaves out the leading u32
 *   page     u64 timestamp, u64 commit (bits 0-26 the data size, bit 31
 *            events were lost before the page, bit 30 their count is stored
 *            as a u64 after the data), then the events: a u32 header
 *            (type_len bits 0-4, time delta bits 5-31); type_len 1-28: the
 *            payload's length in words; 0: the length (+4) in the next word;
 *            29 padding (length in the next word), 30 a time extend, 31 an
 *            absolute timestamp (the next word holds bits 27-58)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bigbuf.h"
#include "dat_fly.h"
#include "dat_fly_ahead.h"
#include "rb_page.h"

#define FLY_MAX_CPUS 4096
#define FLY_MAX_CHUNK ((uint64_t)64 << 20) /* bytes a chunk may decompress to */
#define FLY_MAX_OPTION_SECTIONS 64
#define FLY_MAX_KALLSYMS ((uint64_t)256 << 20)
#define FLY_AHEAD_MIN_CHUNKS 16 /* smaller files: no thread */
#define FLY_AHEAD_MAX_SLOTS 128 /* chunks ahead per CPU */
#define FLY_AHEAD_MIN_SLOTS 4
#define FLY_AHEAD_MAX_BYTES ((uint64_t)64 << 20) /* decompressed chunks held ahead */

/* trace-cmd's option ids (its trace-cmd-private.h) */
enum {
	OPT_DONE = 0,
	OPT_DATE = 1,
	OPT_BUFFER = 3,
	OPT_OFFSET = 7,
	OPT_TIME_SHIFT = 12,
	OPT_GUEST = 13,
	OPT_TSC2NSEC = 14,
	OPT_KALLSYMS = 19,
	OPT_BUFFER_TEXT = 22,
};

enum fly_codec { CODEC_NONE, CODEC_ZSTD };

struct fly_cpu {
	const uint8_t *region, *region_end; /* its data in the file */
	const uint8_t *released;	    /* the mapping given back below this */
	const uint8_t *chunk;		    /* the next chunk's header (compressed data) */
	uint32_t chunks_left;
	uint32_t chunks_all, chunks_taken; /* the walk's progress (pt_fly_progress()) */
	uint8_t *buf; /* the current chunk, decompressed */
	size_t cap;
	const uint8_t *pg, *pg_end; /* pages not yet loaded */
	struct pt_rb_page rb; /* the loaded page */
	bool loaded, doubt, done;
};

struct pt_fly {
	const uint8_t *map;
	size_t len;
	bool mapped; /* map is ours to unmap */
	uint32_t page_size;
	enum fly_codec codec;
	ZSTD_DCtx *zd;
	int ncpu;
	struct fly_cpu *cpu;
	int last, second;    /* the merge (fly_scan()): the CPU handed on last, the next best */
	uint64_t buffer_off; /* the BUFFER option's data section */
	int buffers;
	uint64_t kallsyms_off;	 /* its section, 0: none */
	const uint8_t **size_at; /* per CPU: where the BUFFER option holds its size */
	char *kallsyms;		 /* pt_fly_meta(): the text, decompressed, inside: */
	uint8_t *kallsyms_buf;	 /* the section decompressed (bigbuf.h) */
	size_t kallsyms_len;	 /* its size */
	bool compressed;	 /* the CPU data are zstd chunks */
	uint32_t max_chunk;	 /* the largest chunk, decompressed */
	uint64_t chunks;	 /* in all */
	struct fly_ahead *ahead; /* decompressing ahead of the walk, or NULL */
};

/* A bounded reader over the mapping. */
struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t rd(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	memcpy(&v, p, n); /* little-endian host and file (checked at open) */
	return v;
}

static uint64_t cur_num(struct cur *c, size_t n)
{
	uint64_t v;

	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return 0;
	}
	v = rd(c->p, n);
	c->p += n;
	return v;
}

static const char *cur_str(struct cur *c)
{
	const uint8_t *z = c->bad ? NULL : memchr(c->p, 0, (size_t)(c->end - c->p));
	const char *s = (const char *)c->p;

	if (!z) {
		c->bad = true;
		return "";
	}
	c->p = z + 1;
	return s;
}

/* A cursor over [off, off + len) of the file, bad when outside it. */
static struct cur cur_at(const struct pt_fly *f, uint64_t off, uint64_t len)
{
	struct cur c = {f->map, f->map, true};

	if (off <= f->len && len <= f->len - off)
		c = (struct cur){f->map + off, f->map + off + len, false};
	return c;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t whylen, const char *fmt,
							...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return 1;
}

static int parse_head(struct pt_fly *f, uint64_t *opt_off, char *why, size_t whylen)
{
	static const uint8_t magic[10] = {0x17, 0x08, 0x44, 't', 'r', 'a', 'c', 'i', 'n', 'g'};
	struct cur c = cur_at(f, 0, f->len);
	const char *ver, *codec;
	unsigned endian, lsize;

	if (f->len < sizeof(magic) || memcmp(f->map, magic, sizeof(magic)))
		return refuse(why, whylen, "not a trace.dat");
	c.p += sizeof(magic);
	ver = cur_str(&c);
	endian = (unsigned)cur_num(&c, 1);
	lsize = (unsigned)cur_num(&c, 1);
	f->page_size = (uint32_t)cur_num(&c, 4);
	codec = cur_str(&c);
	cur_str(&c); /* the codec's version */
	*opt_off = cur_num(&c, 8);
	if (c.bad || strcmp(ver, "7"))
		return refuse(why, whylen, "file version %s", c.bad ? "?" : ver);
	if (endian != 0 || lsize != 8 || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		return refuse(why, whylen, "byte order or long size");
	if (f->page_size < 64 || f->page_size > (1u << 20) || (f->page_size & (f->page_size - 1)))
		return refuse(why, whylen, "page size %u", f->page_size);
	if (!strcmp(codec, "zstd"))
		f->codec = CODEC_ZSTD;
	else if (!strcmp(codec, "none") || !*codec)
		f->codec = CODEC_NONE;
	else
		return refuse(why, whylen, "compression %s", codec);
	return 0;
}

/* The BUFFER option: where its CPUs' data lie. Only the top buffer, once. */
static int parse_buffer(struct pt_fly *f, struct cur c, char *why, size_t whylen)
{
	uint64_t off = cur_num(&c, 8);
	const char *name = cur_str(&c);
	uint32_t psize, ncpu;

	cur_str(&c); /* the clock */
	psize = (uint32_t)cur_num(&c, 4);
	ncpu = (uint32_t)cur_num(&c, 4);
	if (c.bad || *name || f->buffers++)
		return refuse(why, whylen, "buffer instances");
	if (psize != f->page_size || ncpu > FLY_MAX_CPUS)
		return refuse(why, whylen, "buffer page size or CPUs");
	f->buffer_off = off;
	f->cpu = calloc(ncpu ? ncpu : 1, sizeof(*f->cpu));
	f->size_at = calloc(ncpu ? ncpu : 1, sizeof(*f->size_at));
	if (!f->cpu || !f->size_at)
		return -ENOMEM;
	f->ncpu = (int)ncpu;
	for (uint32_t i = 0; i < ncpu; i++) {
		uint32_t id = (uint32_t)cur_num(&c, 4);
		uint64_t coff = cur_num(&c, 8), csize;

		f->size_at[i] = c.p;
		csize = cur_num(&c, 8);
		struct cur d = cur_at(f, coff, csize);

		if (c.bad || id != i || d.bad)
			return refuse(why, whylen, "CPU data table");
		f->cpu[i].region = f->cpu[i].pg = f->cpu[i].released = d.p; /* cpu_init() */
		f->cpu[i].region_end = f->cpu[i].pg_end = d.end;
	}
	return 0;
}

/* One options section at @off: its options, and the next section's offset. */
static int parse_options(struct pt_fly *f, uint64_t off, uint64_t *next, char *why, size_t whylen)
{
	struct cur h = cur_at(f, off, 16), c;
	unsigned id = (unsigned)cur_num(&h, 2), flags = (unsigned)cur_num(&h, 2);
	uint64_t size;

	cur_num(&h, 4);
	size = cur_num(&h, 8);
	c = cur_at(f, off + 16, size);
	if (h.bad || c.bad || id != OPT_DONE || flags)
		return refuse(why, whylen, "options section");
	*next = 0;
	while (c.p < c.end) {
		unsigned oid = (unsigned)cur_num(&c, 2);
		uint32_t olen = (uint32_t)cur_num(&c, 4);
		struct cur o;
		int ret = 0;

		if (c.bad || (size_t)(c.end - c.p) < olen)
			return refuse(why, whylen, "options section");
		o = (struct cur){c.p, c.p + olen, false};
		c.p += olen;
		if (oid == OPT_DONE) {
			*next = cur_num(&o, 8);
			return o.bad ? refuse(why, whylen, "options section") : 0;
		}
		if (oid == OPT_BUFFER)
			ret = parse_buffer(f, o, why, whylen);
		else if (oid == OPT_KALLSYMS)
			f->kallsyms_off = cur_num(&o, 8);
		else if (oid == OPT_DATE || oid == OPT_OFFSET || oid == OPT_TIME_SHIFT ||
			 oid == OPT_GUEST || oid == OPT_TSC2NSEC || oid >= OPT_BUFFER_TEXT)
			ret = refuse(why, whylen, "option %u", oid);
		if (ret)
			return ret;
	}
	return 0;
}

/* CPU @i's chunk table checked whole (sizes inside its data, whole pages). */
static int cpu_init(struct pt_fly *f, struct fly_cpu *cpu, bool compressed)
{
	struct cur c = {cpu->pg, cpu->pg_end, false};
	const uint8_t *released = cpu->region;
	uint32_t n;

	if (!compressed || c.p == c.end)
		return (size_t)(c.end - c.p) % f->page_size ? 1 : 0;
	/* the table's size counts the chunks, not the count before them */
	if ((size_t)(f->map + f->len - c.end) < 4)
		return 1;
	c.end += 4;
	n = (uint32_t)cur_num(&c, 4);
	cpu->chunk = c.p;
	cpu->chunks_left = cpu->chunks_all = n;
	for (uint32_t k = 0; k < n && !c.bad; k++) {
		uint32_t csize = (uint32_t)cur_num(&c, 4), usize = (uint32_t)cur_num(&c, 4);

		if (!usize || usize > FLY_MAX_CHUNK || usize % f->page_size ||
		    (size_t)(c.end - c.p) < csize)
			return 1;
		c.p += csize;
		if (usize > f->max_chunk)
			f->max_chunk = usize;
		f->chunks++;
		if (f->mapped) /* reading the headers maps the pages around them */
			fly_release(&released, c.p);
	}
	cpu->pg = cpu->pg_end = NULL;
	return c.bad;
}

static int parse_layout(struct pt_fly *f, char *why, size_t whylen)
{
	uint64_t off = 0, next = 0;
	struct cur h;
	unsigned id, flags;
	int ret = parse_head(f, &off, why, whylen);

	for (int n = 0; !ret && off; n++) {
		if (n == FLY_MAX_OPTION_SECTIONS)
			return refuse(why, whylen, "options sections");
		ret = parse_options(f, off, &next, why, whylen);
		off = next;
	}
	if (ret)
		return ret;
	if (f->buffers != 1)
		return refuse(why, whylen, "no buffer");
	h = cur_at(f, f->buffer_off, 16);
	id = (unsigned)cur_num(&h, 2);
	flags = (unsigned)cur_num(&h, 2);
	if (h.bad || id != OPT_BUFFER || (flags & ~1u) || ((flags & 1) && f->codec == CODEC_NONE))
		return refuse(why, whylen, "buffer section");
	f->compressed = flags & 1;
	for (int i = 0; i < f->ncpu; i++)
		if (cpu_init(f, &f->cpu[i], flags & 1))
			return refuse(why, whylen, "CPU %d data", i);
	return 0;
}

/* The layout of @f->map and what the walk needs: 0, 1 (not ours), -errno. */
static int fly_init(struct pt_fly *f, char *why, size_t whylen)
{
	int ret = parse_layout(f, why, whylen);

	f->last = f->second = -1;
	if (!ret && f->codec == CODEC_ZSTD && !(f->zd = ZSTD_createDCtx()))
		ret = -ENOMEM;
	return ret;
}

/*
 * Starts decompressing ahead of the walk (dat_fly_ahead.h) for a file worth
 * it: zstd chunks, at least FLY_AHEAD_MIN_CHUNKS of them; as many chunks
 * ahead per CPU as FLY_AHEAD_MAX_BYTES holds, at most FLY_AHEAD_MAX_SLOTS
 * (the bundled file: 128 chunks, 5 MB, per CPU), at least
 * FLY_AHEAD_MIN_SLOTS. Without it (or if the thread does not start) the walk
 * decompresses as it goes.
 */
static void start_ahead(struct pt_fly *f)
{
	uint64_t per_slot = (uint64_t)(f->ncpu ? f->ncpu : 1) * (f->max_chunk ? f->max_chunk : 1);
	uint64_t slots = FLY_AHEAD_MAX_BYTES / per_slot;
	const uint8_t **table;
	uint32_t *count;

	if (!f->compressed || f->chunks < FLY_AHEAD_MIN_CHUNKS || slots < FLY_AHEAD_MIN_SLOTS)
		return;
	if (slots > FLY_AHEAD_MAX_SLOTS)
		slots = FLY_AHEAD_MAX_SLOTS;
	table = calloc((size_t)f->ncpu, sizeof(*table));
	count = calloc((size_t)f->ncpu, sizeof(*count));
	if (table && count) {
		for (int i = 0; i < f->ncpu; i++) {
			table[i] = f->cpu[i].chunk;
			count[i] = f->cpu[i].chunks_left;
		}
		fly_ahead_new(f->ncpu, (unsigned)slots, f->max_chunk, f->mapped, table, count,
			      &f->ahead);
	}
	free(table);
	free(count);
}

int pt_fly_open(const char *path, struct pt_fly **out, char *why, size_t whylen)
{
	struct pt_fly *f = calloc(1, sizeof(*f));
	struct stat sb;
	int ret, fd;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) || sb.st_size <= 0) {
		ret = fd < 0 ? -errno : -EINVAL;
		refuse(why, whylen, "cannot read it");
		goto out;
	}
	f->len = (size_t)sb.st_size;
	f->map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		ret = -errno;
		refuse(why, whylen, "cannot map it");
		goto out;
	}
	f->mapped = true;
	ret = fly_init(f, why, whylen);
	if (!ret)
		start_ahead(f);
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		pt_fly_free(f);
	else
		*out = f;
	return ret;
}

int pt_fly_open_mem(const void *data, size_t len, struct pt_fly **out, char *why, size_t whylen)
{
	struct pt_fly *f = calloc(1, sizeof(*f));
	int ret;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->map = data;
	f->len = len;
	ret = fly_init(f, why, whylen);
	if (ret)
		pt_fly_free(f);
	else
		*out = f;
	return ret;
}

/* The kallsyms section's text (its u32 length, then the text), decompressed,
 * into f->kallsyms: 0 (NULL when empty), 1 (not a section we read), -errno. */
static int read_kallsyms(struct pt_fly *f)
{
	struct cur h = cur_at(f, f->kallsyms_off, 16), d;
	unsigned id = (unsigned)cur_num(&h, 2), flags = (unsigned)cur_num(&h, 2);
	uint64_t size, usize, n;
	uint8_t *buf;
	int ret = 1;

	cur_num(&h, 4);
	size = cur_num(&h, 8);
	d = cur_at(f, f->kallsyms_off + 16, size);
	if (h.bad || d.bad || id != OPT_KALLSYMS || (flags & ~1u) || size < 4 ||
	    ((flags & 1) && !f->zd))
		return 1;
	usize = flags & 1 ? (cur_num(&d, 4), cur_num(&d, 4)) : size;
	if (d.bad || usize < 4 || usize > FLY_MAX_KALLSYMS)
		return 1;
	if (!(buf = pt_bigbuf_alloc(usize + 1)))
		return -ENOMEM;
	if (flags & 1) {
		size_t got = ZSTD_decompressDCtx(f->zd, buf, usize, d.p, (size_t)(d.end - d.p));

		if (ZSTD_isError(got) || got != usize)
			goto out;
	} else {
		memcpy(buf, d.p, usize);
	}
	n = rd(buf, 4);
	if (n > usize - 4 || memchr(buf + 4, 0, n))
		goto out;
	if (n) {
		buf[4 + n] = 0;
		f->kallsyms = (char *)buf + 4;
		f->kallsyms_buf = buf;
		f->kallsyms_len = usize + 1;
		buf = NULL;
	}
	ret = 0;
out:
	pt_bigbuf_free(buf, usize + 1);
	return ret;
}

static int write_at(int fd, const void *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

struct span {
	uint64_t from, to;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

/* The file's bytes into @fd at their offsets, but for the @n @skip spans
 * (holes). */
static int copy_except(const struct pt_fly *f, int fd, struct span *skip, int n)
{
	uint64_t at = 0;
	int ret = 0;

	qsort(skip, (size_t)n, sizeof(*skip), span_cmp);
	for (int i = 0; i <= n && !ret; i++) {
		uint64_t to = i < n ? skip[i].from : f->len;

		if (to > at)
			ret = write_at(fd, f->map + at, (size_t)(to - at), at);
		if (i < n && skip[i].to > at)
			at = skip[i].to;
	}
	return ret;
}

/* The copy's changes: every CPU's size 0, an empty kallsyms section. */
static int patch_meta(const struct pt_fly *f, int fd)
{
	static const uint8_t zero[8];
	int ret = 0;

	for (int i = 0; i < f->ncpu && !ret; i++)
		ret = write_at(fd, zero, 8, (uint64_t)(f->size_at[i] - f->map));
	if (!ret && f->kallsyms_off) {
		/* uncompressed, its size kept (libtracecmd finds the next
		 * section past it), a length of 0 first: no kallsyms */
		uint8_t sec[20];

		memcpy(sec, f->map + f->kallsyms_off, 16);
		sec[2] = sec[3] = 0; /* flags */
		memset(sec + 16, 0, 4);
		ret = write_at(fd, sec, sizeof(sec), f->kallsyms_off);
	}
	return ret;
}

int pt_fly_meta(struct pt_fly *f, int *fdp, char **kallsyms, char *why, size_t whylen)
{
	struct span *skip = calloc((size_t)f->ncpu + 1, sizeof(*skip));
	int n = 0, fd = -1, ret = f->kallsyms_off ? read_kallsyms(f) : 0;

	*fdp = -1;
	if (ret || !skip) {
		free(skip);
		return ret ? (ret > 0 ? refuse(why, whylen, "kallsyms section") : ret) : -ENOMEM;
	}
	for (int i = 0; i < f->ncpu; i++)
		skip[n++] = (struct span){(uint64_t)(f->cpu[i].region - f->map),
					  (uint64_t)(f->cpu[i].region_end - f->map)};
	if (f->kallsyms_off) /* the section past its header and an empty length */
		skip[n++] =
		    (struct span){f->kallsyms_off + 20,
				  f->kallsyms_off + 16 + rd(f->map + f->kallsyms_off + 8, 8)};
	fd = memfd_create("ptescope-dat-meta", MFD_CLOEXEC);
	ret = fd < 0 ? -errno : ftruncate(fd, (off_t)f->len) ? -errno : 0;
	if (!ret)
		ret = copy_except(f, fd, skip, n);
	if (!ret)
		ret = patch_meta(f, fd);
	free(skip);
	if (ret) {
		if (fd >= 0)
			close(fd);
		refuse(why, whylen, "cannot write its metadata: %s", strerror(-ret));
		return ret;
	}
	*fdp = fd;
	*kallsyms = f->kallsyms;
	return 0;
}

void pt_fly_progress(const struct pt_fly *f, uint64_t *done, uint64_t *total)
{
	*done = *total = 0;
	for (int i = 0; i < f->ncpu; i++) {
		const struct fly_cpu *c = &f->cpu[i];
		uint64_t size = (uint64_t)(c->region_end - c->region);

		*total += size;
		if (f->compressed && c->chunks_all) /* in chunks: the thread's are ahead */
			*done += size * c->chunks_taken / c->chunks_all;
		else if (!f->compressed && c->pg >= c->region && c->pg <= c->region_end)
			*done += (uint64_t)(c->pg - c->region);
	}
}

void pt_fly_free(struct pt_fly *f)
{
	if (!f)
		return;
	fly_ahead_free(f->ahead);
	for (int i = 0; f->cpu && i < f->ncpu; i++)
		free(f->cpu[i].buf);
	free(f->cpu);
	free(f->size_at);
	pt_bigbuf_free(f->kallsyms_buf, f->kallsyms_len);
	ZSTD_freeDCtx(f->zd);
	if (f->mapped)
		munmap((void *)f->map, f->len);
	free(f);
}

int pt_fly_cpus(const struct pt_fly *f)
{
	return f->ncpu;
}

static int cpu_doubt(struct fly_cpu *c)
{
	c->doubt = true;
	return -1;
}

/* Decompresses @c's next chunk into its buffer: 1, or -1 (doubt). */
static int cpu_next_chunk(struct pt_fly *f, struct fly_cpu *c)
{
	uint32_t csize = (uint32_t)rd(c->chunk, 4), usize = (uint32_t)rd(c->chunk + 4, 4);
	const uint8_t *src = c->chunk + 8;
	size_t n;

	c->chunk = src + csize;
	c->chunks_left--;
	c->chunks_taken++;
	if (f->mapped)
		fly_release(&c->released, src - 8);
	if (usize > c->cap) {
		free(c->buf);
		c->buf = malloc(usize);
		c->cap = c->buf ? usize : 0;
		if (!c->buf)
			return cpu_doubt(c);
	}
	n = ZSTD_decompressDCtx(f->zd, c->buf, usize, src, csize);
	if (ZSTD_isError(n) || n != usize)
		return cpu_doubt(c);
	c->pg = c->buf;
	c->pg_end = c->buf + usize;
	return 1;
}

/* The next event of @c's page (pt_rb_step()): 1, 0 (the page's end), -1 (doubt). */
static inline __attribute__((always_inline)) int cpu_step(struct fly_cpu *c)
{
	int r = pt_rb_step(&c->rb);

	return r < 0 ? cpu_doubt(c) : r;
}

/* Loads @c's next page (kbuffer_load_subbuffer): 1, 0 (no more), -1 (doubt). */
static int cpu_next_page(struct pt_fly *f, struct fly_cpu *c)
{
	const uint8_t *page;

	if (c->pg >= c->pg_end && f->ahead) {
		const uint8_t *buf;
		size_t len;
		int r = fly_ahead_next(f->ahead, (int)(c - f->cpu), &buf, &len);

		if (r <= 0)
			return r < 0 ? cpu_doubt(c) : 0;
		c->chunks_taken++;
		c->pg = buf;
		c->pg_end = buf + len;
	} else if (c->pg >= c->pg_end) {
		if (!c->chunks_left)
			return 0;
		if (cpu_next_chunk(f, c) < 0)
			return -1;
	}
	page = c->pg;
	if (f->mapped && !f->compressed) /* nothing of the pages before is read again */
		fly_release(&c->released, page);
	c->pg += f->page_size;
	c->loaded = true;
	return pt_rb_load(&c->rb, page, f->page_size, 8) < 0 ? cpu_doubt(c) : 1;
}

/* cpu_peek()'s way past the current page: the next pages until one has a
 * record, the end, or a doubt. */
static __attribute__((noinline)) int cpu_refill(struct pt_fly *f, struct fly_cpu *c)
{
	while (!(c->loaded && c->rb.curr < c->rb.size)) {
		if (c->doubt)
			return PT_FLY_DOUBT;
		if (c->done)
			return PT_FLY_END;
		if (cpu_next_page(f, c) == 0)
			c->done = true;
	}
	return c->doubt ? PT_FLY_DOUBT : PT_FLY_REC;
}

/* Makes @c's next record current: PT_FLY_REC, PT_FLY_END, PT_FLY_DOUBT.
 * Before the first page size is 0: the first call loads it. */
static inline int cpu_peek(struct pt_fly *f, struct fly_cpu *c)
{
	if (c->rb.curr < c->rb.size && !c->doubt)
		return PT_FLY_REC;
	return cpu_refill(f, c);
}

static void cpu_record(const struct fly_cpu *c, int cpu, struct pt_fly_rec *rec)
{
	rec->data = c->rb.data + c->rb.index;
	rec->size = (int)(c->rb.next - c->rb.index);
	rec->cpu = cpu;
	rec->ts = c->rb.ts;
	rec->missed = pt_rb_missed(&c->rb);
}

int pt_fly_peek_cpu(struct pt_fly *f, int cpu, struct pt_fly_rec *rec)
{
	int r;

	if (cpu < 0 || cpu >= f->ncpu)
		return PT_FLY_END;
	r = cpu_peek(f, &f->cpu[cpu]);
	if (r == PT_FLY_REC)
		cpu_record(&f->cpu[cpu], cpu, rec);
	return r;
}

/* Every CPU peeked: f->last the one with the smallest time (the lowest on a
 * tie, as libtracecmd), f->second the same among the others (-1: none).
 * PT_FLY_REC, PT_FLY_END, PT_FLY_DOUBT. */
static int fly_scan(struct pt_fly *f)
{
	int best = -1, second = -1;

	for (int i = 0; i < f->ncpu; i++) {
		int r = cpu_peek(f, &f->cpu[i]);

		if (r == PT_FLY_DOUBT)
			return r;
		if (r != PT_FLY_REC)
			continue;
		if (best < 0 || f->cpu[i].rb.ts < f->cpu[best].rb.ts) {
			second = best;
			best = i;
		} else if (second < 0 || f->cpu[i].rb.ts < f->cpu[second].rb.ts) {
			second = i;
		}
	}
	f->last = best;
	f->second = second;
	return best < 0 ? PT_FLY_END : PT_FLY_REC;
}

/* Whether the CPU handed on last is next again: its record before the best
 * of the others, which have not moved since the last scan. */
static inline bool last_again(struct pt_fly *f)
{
	const struct fly_cpu *c;
	int s = f->second;

	if (f->last < 0)
		return false;
	c = &f->cpu[f->last];
	if (!(c->rb.curr < c->rb.size) || c->doubt)
		return false; /* a page to load, an end or a doubt: the scan sees to it */
	return s < 0 || c->rb.ts < f->cpu[s].rb.ts || (c->rb.ts == f->cpu[s].rb.ts && f->last < s);
}

/* The record of f->last, handed on (*rec), and that CPU moved past it. */
static inline int fly_take(struct pt_fly *f, struct pt_fly_rec *rec)
{
	struct fly_cpu *c = &f->cpu[f->last];

	cpu_record(c, f->last, rec);
	/* a doubt here shows at the next call, as libtracecmd's peek would */
	cpu_step(c);
	return PT_FLY_REC;
}

/* pt_fly_next() when the last CPU is not next again: every CPU peeked.
 * Out of line, so that the common way takes no frame for the scan. */
static __attribute__((noinline)) int fly_next_scan(struct pt_fly *f, struct pt_fly_rec *rec)
{
	int r = fly_scan(f);

	return r == PT_FLY_REC ? fly_take(f, rec) : r;
}

int pt_fly_next(struct pt_fly *f, struct pt_fly_rec *rec)
{
	return last_again(f) ? fly_take(f, rec) : fly_next_scan(f, rec);
}
