/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery (daemon/callsite.c) on the live code of copy_page_range
 * read from Debian's kernels in the VM harness (tests/fixtures/callsite/SPEC:
 * text.bin, the kallsyms addresses discovery needs in syms, and in expected
 * the sites and fetch args found by reading the disassembly and checked
 * against each kernel's DWARF), then on
 * damaged copies of it and on small hand-assembled functions that each break
 * one rule: every one must be refused, never planned differently.
 *
 * Usage: test_callsite FIXTURE_DIR...
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callsite.h"
#include "callsite_live.h"
#include "check.h"

struct fixture {
	char dir[512];
	uint8_t text[PD_CS_MAX_TEXT];
	struct pd_cs_input in;
	char expected[12][320];
};

static int read_syms(struct fixture *fx)
{
	char p[600], line[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/syms", fx->dir);
	if (!(f = fopen(p, "r")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char name[128];
		unsigned long long a;

		if (line[0] == '#' || sscanf(line, "%127s %llx", name, &a) != 2)
			continue;
		if (!strcmp(name, "copy_page_range"))
			fx->in.addr = a;
		for (int s = 0; s < PD_CS_NR_SYMS; s++) {
			if (!strcmp(name, pd_cs_sym_name(s)))
				fx->in.sym[s] = a;
			if (!strncmp(name, "__pfx_", 6) && !strcmp(name + 6, pd_cs_sym_name(s)))
				fx->in.pfx[s] = a;
		}
	}
	fclose(f);
	return 0;
}

static int load(const char *dir, struct fixture *fx)
{
	char p[600];
	FILE *f;
	int ret;

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "%s", dir);
	if ((ret = read_syms(fx)))
		return ret;
	snprintf(p, sizeof(p), "%s/text.bin", dir);
	if (!(f = fopen(p, "rb")))
		return -errno;
	fx->in.size = fread(fx->text, 1, sizeof(fx->text), f);
	fclose(f);
	fx->in.text = fx->text;
	/* __pte_offset_map_lock(mm, pmd, addr, ptlp), pte_offset_map_lock alike: the
	 * daemon reads the position from BTF */
	fx->in.maplock_addr_arg = 3;
	snprintf(p, sizeof(p), "%s/expected", dir);
	if (!(f = fopen(p, "r")))
		return -errno;
	for (int i = 0; i < 12 && fgets(fx->expected[i], sizeof(fx->expected[i]), f); i++)
		fx->expected[i][strcspn(fx->expected[i], "\n")] = 0;
	fclose(f);
	return 0;
}

/* The plan as the expected file writes it. */
static void describe(const struct pd_cs_plan *p, char out[12][320])
{
	memset(out, 0, 12 * 320);
	snprintf(out[0], 320, "shape %s", p->shape == PD_CS_SHAPE_LOCK2 ? "lock2" : "maplock");
	snprintf(out[1], 320, "start %#x", p->start_off);
	snprintf(out[2], 320, "end %#x", p->end_off);
	snprintf(out[3], 320, "src_unlock %#x", p->src_unlock_off);
	snprintf(out[4], 320, "start_args %s", p->start_args);
	snprintf(out[5], 320, "end_args %s", p->end_args);
	snprintf(out[6], 320, "call_start %#x", p->call_start_off);
	snprintf(out[7], 320, "call_end %#x", p->call_end_off);
	snprintf(out[8], 320, "call_start_args %s", p->call_start_args);
	snprintf(out[9], 320, "call_end_args %s", p->call_end_args);
}

static int run(const struct pd_cs_input *in, struct pd_cs_plan *p, char *why, size_t len)
{
	why[0] = 0;
	return pd_cs_discover(in, p, why, len);
}

static void check_live(struct fixture *fx, struct pd_cs_plan *plan)
{
	char got[12][320], why[256];
	int ret = run(&fx->in, plan, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "%s: refused: %s\n", fx->dir, why);
		CHECK(ret == 0);
		return;
	}
	describe(plan, got);
	for (int i = 0; i < 10; i++)
		if (strcmp(got[i], fx->expected[i])) {
			fprintf(stderr, "%s: got '%s', expected '%s'\n", fx->dir, got[i],
				fx->expected[i]);
			CHECK(!strcmp(got[i], fx->expected[i]));
		}
	printf("%s: %s, pass start +%#x, end +%#x: %s\n", fx->dir, got[0] + 6, plan->start_off,
	       plan->end_off, plan->end_args);
}

/* ------------------------------------------------ damaged live code */

static bool same_plan(const struct pd_cs_plan *a, const struct pd_cs_plan *b)
{
	return a->shape == b->shape && a->start_off == b->start_off && a->end_off == b->end_off &&
	       !strcmp(a->start_args, b->start_args) && !strcmp(a->end_args, b->end_args);
}

/* Damaged copies of a live function: each refused, none planned otherwise. */
static void check_damaged(struct fixture *fx, const struct pd_cs_plan *good)
{
	static uint8_t copy[PD_CS_MAX_TEXT];
	struct pd_cs_input in = fx->in;
	struct pd_cs_plan p;
	char why[256];
	int32_t rel;

	in.text = copy;
	/* another tool's int3 on the pass-start call */
	memcpy(copy, fx->text, in.size);
	copy[good->start_off] = 0xcc;
	CHECK_EQ(run(&in, &p, why, sizeof(why)), -ENOTSUP);
	if (!strstr(why, "breakpoint"))
		fprintf(stderr, "%s: int3 at the pass start: %s\n", fx->dir, why);
	CHECK(strstr(why, "breakpoint") != NULL);
	/* an optimized probe's jump out of the kernel text on the pass end */
	memcpy(copy, fx->text, in.size);
	rel = (int32_t)(int64_t)(in.sym[PD_CS_TEXT_END] + 0x100000 -
				 (in.addr + good->call_end_off + 5));
	copy[good->call_end_off] = 0xe9;
	memcpy(copy + good->call_end_off + 1, &rel, 4);
	CHECK_EQ(run(&in, &p, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "kernel text") != NULL);
	/* the lock functions unknown: no pass can be told */
	memcpy(copy, fx->text, in.size);
	in.sym[PD_CS_RAW_UNLOCK] = in.pfx[PD_CS_RAW_UNLOCK] = 0;
	in.sym[PD_CS_RT_UNLOCK] = in.pfx[PD_CS_RT_UNLOCK] = 0;
	CHECK_EQ(run(&in, &p, why, sizeof(why)), -ENOTSUP);
	in = fx->in;
	in.text = copy;
	/* cut anywhere: refused, or the same plan (the sites lie before the cut), or the
	 * same with the pass end on its call */
	for (size_t len = 0; len <= fx->in.size; len += 61) {
		int ret;
		bool on_call;

		in.size = len;
		ret = run(&in, &p, why, sizeof(why));
		/* or the pass end left on its call: the code it was moved up over
		 * (bookworm: the rss[] loop's out-of-line part) is cut off */
		on_call = ret == 0 && p.end_off == good->call_end_off &&
			  !strcmp(p.end_args, good->call_end_args);
		if (on_call) {
			p.end_off = good->end_off;
			snprintf(p.end_args, sizeof(p.end_args), "%s", good->end_args);
		}
		if (!(ret == -ENOTSUP || ret == -EINVAL || (ret == 0 && same_plan(&p, good))))
			fprintf(stderr, "%s: cut at %#zx: %d, end +%#x %s\n", fx->dir, len, ret,
				p.end_off, p.end_args);
		CHECK(ret == -ENOTSUP || ret == -EINVAL || (ret == 0 && same_plan(&p, good)));
	}
	/* every byte of the pass-end call's 32 following bytes flipped in turn */
	in.size = fx->in.size;
	for (uint32_t o = good->call_end_off; o < good->call_end_off + 32 && o < in.size; o++) {
		int ret;

		memcpy(copy, fx->text, in.size);
		copy[o] ^= 0x5a;
		ret = run(&in, &p, why, sizeof(why));
		CHECK(ret == -ENOTSUP || (ret == 0 && p.call_end_off == good->call_end_off));
	}
}

/* ------------------------------------------------------ synthetic code */

extern const uint8_t synth_base[], synth_base_end[], synth_maplock[], synth_maplock_end[],
    synth_clobber[], synth_clobber_end[], synth_computed[], synth_computed_end[], synth_slotwrite[],
    synth_slotwrite_end[], synth_spmove[], synth_spmove_end[], synth_mmlist[], synth_mmlist_end[],
    synth_twoends[], synth_twoends_end[], synth_norss[], synth_norss_end[], synth_noret[],
    synth_noret_end[], synth_retslot[], synth_retslot_end[], synth_moveup[], synth_moveup_end[],
    synth_enter[], synth_enter_end[], synth_argwrite[], synth_argwrite_end[], synth_ool[],
    synth_ool_end[], synth_oolwrite[], synth_oolwrite_end[], synth_lock[], synth_unlock[],
    synth_maplock_fn[], synth_mmlist_lock[], synth_text_end[];

static const char *const synth_end_args =
    "pt_ptl=%di:x64 pt_a=+0x58(%sp):x64 pt_b=+0(%sp):x64 pt_ret=%bp:s32 "
    "pt_rss=+0x170(%sp):x64[2]";

static int synth_run(const uint8_t *start, const uint8_t *end, bool mmlist_known,
		     struct pd_cs_plan *p, char *why, size_t len)
{
	struct pd_cs_input in = {.text = start,
				 .size = (size_t)(end - start),
				 .addr = (uint64_t)(uintptr_t)start,
				 .maplock_addr_arg = 3};

	in.sym[PD_CS_RAW_LOCK] = (uint64_t)(uintptr_t)synth_lock;
	in.sym[PD_CS_RAW_UNLOCK] = (uint64_t)(uintptr_t)synth_unlock;
	in.sym[PD_CS_MAPLOCK] = (uint64_t)(uintptr_t)synth_maplock_fn;
	in.sym[PD_CS_MMLIST_LOCK] = mmlist_known ? (uint64_t)(uintptr_t)synth_mmlist_lock : 0;
	in.sym[PD_CS_TEXT_START] = (uint64_t)(uintptr_t)synth_base;
	in.sym[PD_CS_TEXT_END] = (uint64_t)(uintptr_t)synth_text_end;
	return run(&in, p, why, len);
}

static void check_synth(void)
{
	static const struct {
		const char *name;
		const uint8_t *start, *end;
		bool mmlist_known;
		const char *refusal; /* NULL: planned */
	} cases[] = {
	    {"base", synth_base, synth_base_end, true, NULL},
	    {"maplock", synth_maplock, synth_maplock_end, true, NULL},
	    {"retslot", synth_retslot, synth_retslot_end, true, NULL},
	    {"mmlist", synth_mmlist, synth_mmlist_end, true, NULL},
	    {"mmlist, mmlist_lock unknown", synth_mmlist, synth_mmlist_end, false, "unlock"},
	    {"clobber", synth_clobber, synth_clobber_end, true, "clobbers"},
	    {"computed", synth_computed, synth_computed_end, true, "computed"},
	    {"slotwrite", synth_slotwrite, synth_slotwrite_end, true, "written"},
	    {"spmove", synth_spmove, synth_spmove_end, true, "stack pointer"},
	    {"twoends", synth_twoends, synth_twoends_end, true, "two pass ends"},
	    {"norss", synth_norss, synth_norss_end, true, "rss"},
	    {"noret", synth_noret, synth_noret_end, true, "-EIO"},
	    {"moveup", synth_moveup, synth_moveup_end, true, NULL},
	    {"enter", synth_enter, synth_enter_end, true, NULL},
	    {"argwrite", synth_argwrite, synth_argwrite_end, true, NULL},
	    {"ool", synth_ool, synth_ool_end, true, NULL},
	    {"oolwrite", synth_oolwrite, synth_oolwrite_end, true, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pd_cs_plan p;
		char why[256];
		int ret = synth_run(cases[i].start, cases[i].end, cases[i].mmlist_known, &p, why,
				    sizeof(why));

		if (cases[i].refusal) {
			if (ret != -ENOTSUP || !strstr(why, cases[i].refusal))
				fprintf(stderr,
					"synth %s: %d '%s', expected a refusal naming '%s'\n",
					cases[i].name, ret, why, cases[i].refusal);
			CHECK(ret == -ENOTSUP && strstr(why, cases[i].refusal));
			continue;
		}
		if (ret)
			fprintf(stderr, "synth %s: refused: %s\n", cases[i].name, why);
		CHECK_EQ(ret, 0);
		if (ret)
			continue;
		CHECK_EQ(p.shape, strcmp(cases[i].name, "maplock") ? PD_CS_SHAPE_LOCK2
								   : PD_CS_SHAPE_MAPLOCK);
		if (!strcmp(cases[i].name, "retslot"))
			CHECK(!strcmp(p.call_end_args,
				      "pt_ptl=%di:x64 pt_a=+0x58(%sp):x64 pt_b=+0(%sp):x64 "
				      "pt_ret=+0x28(%sp):s32 pt_rss=+0x170(%sp):x64[2]"));
		else if (!strcmp(cases[i].name, "maplock"))
			CHECK(!strcmp(p.call_end_args, synth_end_args + strlen("pt_ptl=%di:x64 ")));
		else
			CHECK(!strcmp(p.call_end_args, synth_end_args));
		if (!strcmp(cases[i].name, "moveup") || !strcmp(cases[i].name, "ool")) {
			/* up over the rss[] loop to the 5-byte move after the parent's
			 * unlock call; the lock from where %rdi gets it */
			CHECK_EQ(p.end_off, p.src_unlock_off + 5);
			CHECK(!strcmp(p.end_args, "pt_ptl=%r13:x64 pt_a=+0x58(%sp):x64 "
						  "pt_b=+0(%sp):x64 pt_ret=%bp:s32 "
						  "pt_rss=+0x170(%sp):x64[2]"));
		} else {
			/* the end cannot move (a 3-byte move after the rss loop's branch;
			 * enter: the loop is entered from before the parent's unlock;
			 * argwrite, oolwrite: ret is written on the way) */
			CHECK(p.end_off == p.call_end_off && !strcmp(p.end_args, p.call_end_args));
		}
		if (p.shape == PD_CS_SHAPE_MAPLOCK) {
			/* `again: mov %r13,%rdi; mov %r14,%rdx; call`: 6 bytes, the probe moves
			 * to `again:` and reads addr where %rdx gets it from */
			CHECK(!strcmp(p.call_start_args, "pt_addr=%dx:x64"));
			CHECK(!strcmp(p.start_args, "pt_addr=%r14:x64"));
			CHECK(p.start_off == p.again_off && p.call_start_off == p.again_off + 6);
		} else {
			/* 3 bytes after `again:`, after the frame's `sub`: it stays */
			CHECK(!strcmp(p.start_args, "pt_ptl=%di:x64"));
			CHECK(p.start_off == p.call_start_off);
		}
		printf("synth %s: %s\n", cases[i].name, p.end_args);
	}
}

/* ------------------------------------------------------------ the cache */

static void put_file(const char *p, const char *text, mode_t mode)
{
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, mode);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	if (fd >= 0)
		close(fd);
	chmod(p, mode);
}

/* pd_cs_cache_load as @want, the plan in @got. */
static bool load_as(const char *p, const struct pd_cs_found *want, struct pd_cs_plan *got)
{
	struct pd_cs_found f = *want;
	bool ok;

	memset(&f.plan, 0, sizeof(f.plan));
	ok = pd_cs_cache_load(p, &f);
	*got = f.plan;
	return ok;
}

/* The plan kept by build id: read back whole, and only when it is ours, not
 * writable by others, of this build and size, and holds nothing a fetch arg
 * cannot (a probe smuggled into kprobe_events). */
static void check_cache(const struct pd_cs_plan *plan)
{
	char dir[] = "/tmp/ptescope-cs-XXXXXX", p[256], link[256], *text;
	struct pd_cs_found f = {.plan = *plan, .text_size = 5120}, want;
	struct pd_cs_plan got;
	FILE *in;
	long n;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	snprintf(f.build_id, sizeof(f.build_id), "6a2b4ac77585b8cf102cba771300e573c8489b69");
	snprintf(p, sizeof(p), "%s/callsite-%s.plan", dir, f.build_id);
	want = f;
	pd_cs_cache_save(p, &f);
	CHECK(load_as(p, &want, &got));
	CHECK(same_plan(&got, plan) && got.call_start_off == plan->call_start_off &&
	      got.call_end_off == plan->call_end_off &&
	      !strcmp(got.call_start_args, plan->call_start_args) &&
	      !strcmp(got.call_end_args, plan->call_end_args));
	/* by build id alone (the size is not known before): the plan's size */
	want.text_size = 0;
	CHECK(load_as(p, &want, &got));
	want = f;
	/* another build, another size */
	want.build_id[0] = '7';
	CHECK(!load_as(p, &want, &got));
	want = f;
	want.text_size = 5136;
	CHECK(!load_as(p, &want, &got));
	want = f;
	/* writable by others; a symlink to it */
	chmod(p, 0666);
	CHECK(!load_as(p, &want, &got));
	chmod(p, 0600);
	snprintf(link, sizeof(link), "%s/link.plan", dir);
	CHECK(!symlink(p, link));
	CHECK(!load_as(link, &want, &got));
	/* edited: a second probe after the args, an old format, a cut file */
	in = fopen(p, "r");
	text = calloc(1, 8192);
	n = in && text ? (long)fread(text, 1, 8000, in) : 0;
	if (in)
		fclose(in);
	CHECK(n > 100);
	if (n > 100) {
		char *bad = calloc(1, 9000), *e = strstr(text, "end_args ");

		snprintf(bad, 9000, "%.*s%s", (int)(strchr(e, '\n') - text), text,
			 "; p:kprobes/evil do_sys_openat2\n");
		put_file(p, bad, 0600);
		CHECK(!load_as(p, &want, &got));
		snprintf(bad, 9000, "%s", text);
		memcpy(bad, "ptescope-callsite 1", 19);
		put_file(p, bad, 0600);
		CHECK(!load_as(p, &want, &got));
		snprintf(bad, 9000, "%.*s", (int)(strstr(text, "call_start ") - text), text);
		put_file(p, bad, 0600);
		CHECK(!load_as(p, &want, &got));
		free(bad);
	}
	free(text);
	unlink(link);
	unlink(p);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		static struct fixture fx;
		struct pd_cs_plan plan;

		if (load(argv[a], &fx)) {
			fprintf(stderr, "cannot load %s\n", argv[a]);
			return 2;
		}
		check_live(&fx, &plan);
		if (!test_failures)
			check_damaged(&fx, &plan);
		if (!test_failures && a == 1)
			check_cache(&plan);
	}
	check_synth();
	TEST_DONE();
}
