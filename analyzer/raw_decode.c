/* SPDX-License-Identifier: MIT */
/*
 * Raw record decoding (raw_decode.h): field offsets resolved once per
 * format, numbers read through tep_read_number() so the file's endianness
 * is honoured.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_decode.h"

#define PROBE_SPAN 256 /* the ids a decoder finds its probes by directly */

struct field {
	int offset, size; /* size 0: absent */
	bool dynamic;	  /* __data_loc: a 32-bit (length << 16 | offset) locator */
	bool relative;	  /* __rel_loc: the offset counts from the field's end */
};

struct pt_raw_decoder {
	struct tep_handle *tep;
	bool native; /* the data has this machine's byte order: plain loads */
	bool std_common; /* native, and type, flags and pid where every kernel puts them */
	int entry_id, exit_id, fork_id, switch_id, newtask_id; /* -1 when absent */
	uint64_t preempt_mask;			   /* sched_switch prev_state bit of "R+" */
	struct field type, pid, flags;
	struct field e_func, e_depth;
	struct field x_func, x_depth, x_call, x_ret, x_over; /* x_over optional */
	struct field f_pcomm, f_ppid, f_ccomm, f_cpid;
	struct field s_prev_pid, s_prev_state, s_next_pid;
	struct field n_pid, n_flags; /* task_newtask: the child, its clone_flags */
	/* kprobe/kretprobe events of one group (pt_raw_decoder_add_probes) */
	struct probe {
		int id;
		enum pt_event_type type; /* ENTRY, EXIT (a kretprobe), PASS_START/END */
		struct field at;	 /* the function's address (ENTRY, EXIT) */
		/* the task's counters (PT_RAW_CTR_*): task.size 0 when absent */
		struct field task, niv, runs, wait;
		/* struct pt_site's fields (size 0 when absent); rss[] as 4 fields */
		struct field vms, vme, crss[4], prss[4], ppte, pmaps;
		struct field ptl, addr, a, b, ret, rss[4];
		/* native data and a record at least this long: every field this
		 * probe reads is inside it and 1, 2, 4 or 8 bytes (read without
		 * a check each); INT_MAX when some field is not */
		int need;
	} probe[PT_RAW_MAX_PROBES];
	int nr_probes;
	/* probe index + 1 by event id - probe_base (0: none), for ids within
	 * PROBE_SPAN of the lowest; others are looked up in probe[] */
	int probe_base;
	uint8_t probe_at[PROBE_SPAN];
};

static struct field field_of(struct tep_event *ev, const char *name)
{
	struct tep_format_field *f;

	if (!ev)
		return (struct field){0, 0, false, false};
	f = tep_find_field(ev, name);
	if (!f)
		f = tep_find_common_field(ev, name);
	if (!f || f->offset < 0 || f->size <= 0 || f->size > 4096)
		return (struct field){0, 0, false, false};
	return (struct field){f->offset, f->size, (f->flags & TEP_FIELD_IS_DYNAMIC) != 0,
			      (f->flags & TEP_FIELD_IS_RELATIVE) != 0};
}

/* Value of a constant expression of the print format (numbers, | + - << >> &), -1 if not one. */
static int64_t const_eval(const struct tep_print_arg *a)
{
	int64_t l, r;
	char *end;

	if (!a)
		return -1;
	if (a->type == TEP_PRINT_ATOM) {
		unsigned long long v = strtoull(a->atom.atom, &end, 0);

		return end != a->atom.atom && !*end && v < (1ull << 62) ? (int64_t)v : -1;
	}
	if (a->type != TEP_PRINT_OP || !a->op.left || !a->op.right)
		return -1;
	if ((l = const_eval(a->op.left)) < 0 || (r = const_eval(a->op.right)) < 0)
		return -1;
	if (!strcmp(a->op.op, "|"))
		return l | r;
	if (!strcmp(a->op.op, "&"))
		return l & r;
	if (!strcmp(a->op.op, "+"))
		return l + r < (1ll << 62) ? l + r : -1;
	if (!strcmp(a->op.op, "-"))
		return l >= r ? l - r : -1;
	if (!strcmp(a->op.op, "<<"))
		return r < 32 && l < (1ll << 30) ? l << r : -1;
	if (!strcmp(a->op.op, ">>"))
		return r < 63 ? l >> r : -1;
	return -1;
}

static bool is_field(const struct tep_print_arg *a, const char *name)
{
	return a && a->type == TEP_PRINT_FIELD && a->field.name && !strcmp(a->field.name, name);
}

/*
 * The prev_state bit sched_switch prints as "+" ("R+": the task was preempted,
 * still runnable): the kernel's print format has
 * `REC->prev_state & MASK ? "+" : ""`, MASK a constant expression
 * (TASK_REPORT_MAX, 0x100 on 6.1). Read from the format rather than assumed.
 * Returns the mask or 0 when the format does not have that shape.
 */
static uint64_t find_preempt_mask(const struct tep_print_arg *a)
{
	for (; a; a = a->next) {
		uint64_t m;

		if (a->type != TEP_PRINT_OP)
			continue;
		if (!strcmp(a->op.op, "?") && a->op.left && a->op.right &&
		    a->op.left->type == TEP_PRINT_OP && !strcmp(a->op.left->op.op, "&") &&
		    is_field(a->op.left->op.left, "prev_state") &&
		    a->op.right->type == TEP_PRINT_OP && !strcmp(a->op.right->op.op, ":") &&
		    a->op.right->op.left && a->op.right->op.left->type == TEP_PRINT_ATOM &&
		    !strcmp(a->op.right->op.left->atom.atom, "+")) {
			int64_t v = const_eval(a->op.left->op.right);

			if (v > 0)
				return (uint64_t)v;
		}
		if ((m = find_preempt_mask(a->op.left)) || (m = find_preempt_mask(a->op.right)))
			return m;
	}
	return 0;
}

uint64_t pt_raw_switch_preempt_mask(struct tep_handle *tep)
{
	struct tep_event *ev = tep_find_event_by_name(tep, "sched", "sched_switch");

	return ev ? find_preempt_mask(ev->print_fmt.args) : 0;
}

int pt_raw_decoder_new(struct tep_handle *tep, struct pt_raw_decoder **out)
{
	struct pt_raw_decoder *d = calloc(1, sizeof(*d));
	struct tep_event *entry, *exit_ev, *fork_ev, *switch_ev, *newtask, *any;

	if (!d)
		return -ENOMEM;
	d->tep = tep;
	d->native = tep_is_file_bigendian(tep) == tep_is_bigendian();
	entry = tep_find_event_by_name(tep, "ftrace", "funcgraph_entry");
	exit_ev = tep_find_event_by_name(tep, "ftrace", "funcgraph_exit");
	fork_ev = tep_find_event_by_name(tep, "sched", "sched_process_fork");
	switch_ev = tep_find_event_by_name(tep, "sched", "sched_switch");
	newtask = tep_find_event_by_name(tep, "task", "task_newtask");
	any = entry ? entry : exit_ev ? exit_ev : fork_ev;
	d->type = field_of(any, "common_type");
	d->pid = field_of(any, "common_pid");
	d->flags = field_of(any, "common_flags");
	d->std_common = d->native && d->type.offset == 0 && d->type.size == 2 && !d->type.dynamic &&
			d->flags.offset == 2 && d->flags.size == 1 && d->pid.offset == 4 &&
			d->pid.size == 4 && !d->pid.dynamic;
	d->e_func = field_of(entry, "func");
	d->e_depth = field_of(entry, "depth");
	d->x_func = field_of(exit_ev, "func");
	d->x_depth = field_of(exit_ev, "depth");
	d->x_call = field_of(exit_ev, "calltime");
	d->x_ret = field_of(exit_ev, "rettime");
	d->x_over = field_of(exit_ev, "overrun");
	d->f_pcomm = field_of(fork_ev, "parent_comm");
	d->f_ppid = field_of(fork_ev, "parent_pid");
	d->f_ccomm = field_of(fork_ev, "child_comm");
	d->f_cpid = field_of(fork_ev, "child_pid");
	d->s_prev_pid = field_of(switch_ev, "prev_pid");
	d->s_prev_state = field_of(switch_ev, "prev_state");
	d->s_next_pid = field_of(switch_ev, "next_pid");
	d->n_pid = field_of(newtask, "pid");
	d->n_flags = field_of(newtask, "clone_flags");
	d->preempt_mask = switch_ev ? find_preempt_mask(switch_ev->print_fmt.args) : 0;
	d->entry_id = d->exit_id = d->fork_id = d->switch_id = d->newtask_id = -1;
	/* clone_flags is an unsigned long (6.1) or a u64 (later): 8 bytes on x86-64 */
	if (newtask && d->n_pid.size == 4 && (d->n_flags.size == 8 || d->n_flags.size == 4))
		d->newtask_id = newtask->id;
	if (switch_ev && d->s_prev_pid.size && d->s_prev_state.size && d->s_next_pid.size &&
	    d->preempt_mask)
		d->switch_id = switch_ev->id;
	if (entry && exit_ev && d->e_func.size && d->e_depth.size && d->x_func.size &&
	    d->x_depth.size && d->x_call.size && d->x_ret.size) {
		d->entry_id = entry->id;
		d->exit_id = exit_ev->id;
	}
	if (fork_ev && d->f_ppid.size && d->f_cpid.size)
		d->fork_id = fork_ev->id;
	if (!d->type.size || !d->pid.size || (d->entry_id < 0 && d->fork_id < 0)) {
		free(d);
		return -ENOENT;
	}
	*out = d;
	return 0;
}

void pt_raw_decoder_free(struct pt_raw_decoder *d)
{
	free(d);
}

/* The counter fields of entry probe @p's event @ev, all four or none. */
static void probe_counters(struct probe *p, struct tep_event *ev)
{
	p->task = field_of(ev, PT_RAW_CTR_TASK);
	p->niv = field_of(ev, PT_RAW_CTR_NIVCSW);
	p->runs = field_of(ev, PT_RAW_CTR_PCOUNT);
	p->wait = field_of(ev, PT_RAW_CTR_WAIT);
	if (!p->task.size || !p->niv.size || !p->runs.size || !p->wait.size)
		p->task.size = 0;
}

/* The site fields of probe @p's event @ev: all of a group or none of it. */
static void probe_site(struct probe *p, struct tep_event *ev)
{
	struct field rss = field_of(ev, PT_RAW_PASS_RSS);
	char name[32];

	p->vms = field_of(ev, PT_RAW_VMA_START);
	p->vme = field_of(ev, PT_RAW_VMA_END);
	if (!p->vms.size || !p->vme.size)
		p->vms.size = p->vme.size = 0;
	for (int k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), PT_RAW_CHILD_RSS "%d", k);
		p->crss[k] = field_of(ev, name);
		if (!p->crss[k].size)
			p->crss[0].size = 0;
		snprintf(name, sizeof(name), PT_RAW_PARENT_RSS "%d", k);
		p->prss[k] = field_of(ev, name);
		if (!p->prss[k].size)
			p->prss[0].size = 0;
	}
	p->ppte = field_of(ev, PT_RAW_PARENT_PTE);
	p->pmaps = field_of(ev, PT_RAW_PARENT_MAPS);
	if (!p->ppte.size || !p->pmaps.size)
		p->prss[0].size = 0;
	p->ptl = field_of(ev, PT_RAW_PASS_PTL);
	p->addr = field_of(ev, PT_RAW_PASS_ADDR);
	p->a = field_of(ev, PT_RAW_PASS_A);
	p->b = field_of(ev, PT_RAW_PASS_B);
	p->ret = field_of(ev, PT_RAW_PASS_RET);
	/* int rss[4], fetched as x64[2] (two reads; older plans: s32[4]): four 4-byte fields */
	for (int k = 0; k < 4; k++)
		p->rss[k] = rss.size == 16 && !rss.dynamic
				    ? (struct field){rss.offset + 4 * k, 4, false, false}
				    : (struct field){0, 0, false, false};
}

/* Whether pass probe @p has what its kind needs: a start anything, an end
 * addr, end, ret and rss. */
static bool pass_complete(const struct probe *p)
{
	return p->type == PT_EV_PASS_START ||
	       (p->a.size && p->b.size && p->ret.size && p->rss[0].size);
}

/* Widens @need to field @f when it is present; INT_MAX if not a plain number. */
static void need_field(int *need, struct field f)
{
	if (!f.size || *need == INT_MAX)
		return;
	if ((f.size != 1 && f.size != 2 && f.size != 4 && f.size != 8) || f.dynamic)
		*need = INT_MAX;
	else if (f.offset + f.size > *need)
		*need = f.offset + f.size;
}

/* The record length from which every field probe @p reads is inside it
 * (decode_probe's reads for its kind), INT_MAX when one is not a number of
 * 1, 2, 4 or 8 bytes. */
static int probe_need(const struct probe *p)
{
	int need = 0;

	if (p->type == PT_EV_ENTRY || p->type == PT_EV_EXIT)
		need_field(&need, p->at);
	if (p->task.size) {
		need_field(&need, p->task);
		need_field(&need, p->niv);
		need_field(&need, p->runs);
		need_field(&need, p->wait);
	}
	if (p->type == PT_EV_PASS_START || p->type == PT_EV_PASS_END) {
		need_field(&need, p->ptl);
		need_field(&need, p->addr);
		if (p->type == PT_EV_PASS_END) {
			need_field(&need, p->a);
			need_field(&need, p->b);
			need_field(&need, p->ret);
			for (int k = 0; k < 4; k++)
				need_field(&need, p->rss[k]);
		}
		return need;
	}
	if (p->vms.size) {
		need_field(&need, p->vms);
		need_field(&need, p->vme);
	}
	if (p->crss[0].size)
		for (int k = 0; k < 4; k++)
			need_field(&need, p->crss[k]);
	if (p->prss[0].size) {
		for (int k = 0; k < 4; k++)
			need_field(&need, p->prss[k]);
		need_field(&need, p->ppte);
		need_field(&need, p->pmaps);
	}
	return need;
}

/* probe_at[] from probe[] (the first probe of an id wins, as the scan did). */
static void index_probes(struct pt_raw_decoder *d)
{
	memset(d->probe_at, 0, sizeof(d->probe_at));
	d->probe_base = INT_MAX;
	for (int i = 0; i < d->nr_probes; i++)
		if (d->probe[i].id < d->probe_base)
			d->probe_base = d->probe[i].id;
	for (int i = d->nr_probes - 1; i >= 0; i--) {
		int64_t at = (int64_t)d->probe[i].id - d->probe_base;

		if (at >= 0 && at < PROBE_SPAN)
			d->probe_at[at] = (uint8_t)(i + 1);
	}
}

int pt_raw_decoder_add_probes(struct pt_raw_decoder *d, const char *group)
{
	struct tep_event **all = tep_list_events(d->tep, TEP_EVENT_SORT_ID);

	if (!all)
		return -ENOMEM;
	for (int i = 0; all[i]; i++) {
		struct tep_event *ev = all[i];
		struct field ret = field_of(ev, "__probe_ret_ip"), fn = field_of(ev, "__probe_func"),
			     ip = field_of(ev, "__probe_ip");
		bool exit = fn.size && ret.size;
		struct probe *p;

		if (!ev->system || strcmp(ev->system, group) || !(exit || ip.size))
			continue;
		if (d->nr_probes == PT_RAW_MAX_PROBES)
			return -E2BIG;
		p = &d->probe[d->nr_probes];
		*p = (struct probe){.id = ev->id, .type = exit ? PT_EV_EXIT : PT_EV_ENTRY,
				    .at = exit ? fn : ip};
		if (!exit && ev->name && !strcmp(ev->name, PT_RAW_PASS_START_EVENT))
			p->type = PT_EV_PASS_START;
		else if (!exit && ev->name && !strcmp(ev->name, PT_RAW_PASS_END_EVENT))
			p->type = PT_EV_PASS_END;
		if (!exit) {
			probe_counters(p, ev);
			probe_site(p, ev);
		}
		if ((p->type == PT_EV_PASS_START || p->type == PT_EV_PASS_END) &&
		    !pass_complete(p))
			continue; /* not one we can read: left undecoded */
		p->need = probe_need(p);
		d->nr_probes++;
	}
	index_probes(d);
	return d->nr_probes;
}

bool pt_raw_decoder_has_graph(const struct pt_raw_decoder *d)
{
	return d->entry_id >= 0;
}

bool pt_raw_decoder_has_fork(const struct pt_raw_decoder *d)
{
	return d->fork_id >= 0;
}

bool pt_raw_decoder_has_switch(const struct pt_raw_decoder *d)
{
	return d->switch_id >= 0;
}

static bool overlap(struct field a, struct field b)
{
	return a.size && b.size && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

bool pt_raw_decoder_exit_times(const struct pt_raw_decoder *d, int *call_off, int *ret_off)
{
	const struct field other[] = {d->type, d->pid, d->flags, d->x_func, d->x_depth, d->x_over,
				      d->x_ret};

	if (d->exit_id < 0 || !d->native || d->x_call.size != 8 || d->x_ret.size != 8 ||
	    d->x_call.dynamic || d->x_ret.dynamic || d->x_call.offset < 0 || d->x_ret.offset < 0)
		return false;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (overlap(d->x_call, other[i]) ||
		    (i + 1 < sizeof(other) / sizeof(other[0]) && overlap(d->x_ret, other[i])))
			return false;
	*call_off = d->x_call.offset;
	*ret_off = d->x_ret.offset;
	return true;
}

/* A field of native data known to be inside the record and 1, 2, 4 or 8
 * bytes (a probe's `need`): no checks. */
static inline uint64_t rd(const void *data, struct field f)
{
	const char *p = (const char *)data + f.offset;

	switch (f.size) {
	case 1:
		return *(const uint8_t *)p;
	case 2: {
		uint16_t v;

		memcpy(&v, p, 2);
		return v;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, p, 4);
		return v;
	}
	default: {
		uint64_t v;

		memcpy(&v, p, 8);
		return v;
	}
	}
}

static inline int64_t sext(uint64_t v, int size)
{
	switch (size) {
	case 1:
		return (int8_t)v;
	case 2:
		return (int16_t)v;
	case 4:
		return (int32_t)v;
	default:
		return (int64_t)v;
	}
}

static uint64_t num(const struct pt_raw_decoder *d, const void *data, int size, struct field f,
		    bool *ok)
{
	const char *p = (const char *)data + f.offset;

	if (!f.size || f.size > 8 || f.offset + f.size > size) {
		*ok = false;
		return 0;
	}
	if (d->native && !(f.size & (f.size - 1))) /* 1, 2, 4 or 8 bytes */
		return rd(data, f);
	return tep_read_number(d->tep, p, f.size);
}

/* Copies a char[] field, fixed (char comm[16]) or dynamic (__data_loc char[],
 * newer kernels), bounded by the record and by @outlen. */
static void str(const struct pt_raw_decoder *d, const void *data, int size, struct field f,
		char *out, size_t outlen)
{
	size_t len = 0, max = (size_t)f.size;
	const char *p;

	out[0] = '\0';
	if (!f.size || f.offset + f.size > size)
		return;
	p = (const char *)data + f.offset;
	if (f.dynamic) {
		bool ok = true;
		uint64_t loc = num(d, data, size, f, &ok);
		size_t off = (size_t)(loc & 0xffff), n = (size_t)(loc >> 16) & 0xffff;

		if (!ok)
			return;
		if (f.relative)
			off += (size_t)f.offset + (size_t)f.size;
		if (off > (size_t)size || n > (size_t)size - off)
			return;
		p = (const char *)data + off;
		max = n;
	}
	while (len < max && len + 1 < outlen && p[len])
		len++;
	memcpy(out, p, len);
	out[len] = '\0';
}

static int64_t snum(const struct pt_raw_decoder *d, const void *data, int size, struct field f,
		    bool *ok)
{
	return sext(num(d, data, size, f, ok), f.size);
}

/* Field @f of a probe's record: unchecked when @fast (probe_need), else num(). */
#define PNUM(f) (fast ? rd(data, (f)) : num(d, data, size, (f), ok))
#define PSNUM(f) (fast ? sext(rd(data, (f)), (f).size) : snum(d, data, size, (f), ok))

/* The pt_site fields probe @p fetched. */
static void decode_site(const struct pt_raw_decoder *d, const void *data, int size,
			const struct probe *p, struct pt_raw_event *ev, bool fast, bool *ok)
{
	struct pt_site *s = &ev->site;

	/* a probe that fetches none leaves the site as it was (has_site false) */
	if (p->type != PT_EV_PASS_START && p->type != PT_EV_PASS_END && !p->vms.size &&
	    !p->crss[0].size && !p->prss[0].size)
		return;
	memset(s, 0, sizeof(*s));
	if (p->type == PT_EV_PASS_START || p->type == PT_EV_PASS_END) {
		ev->has_site = true;
		if (p->ptl.size)
			s->ptl = PNUM(p->ptl);
		if (p->addr.size)
			s->addr = PNUM(p->addr);
		if (p->type == PT_EV_PASS_END) {
			s->a = PNUM(p->a);
			s->b = PNUM(p->b);
			s->ret = PSNUM(p->ret);
			for (int k = 0; k < 4; k++)
				s->rss[k] = (int32_t)PSNUM(p->rss[k]);
		}
		return;
	}
	if (p->vms.size) {
		ev->has_site = s->has_vma = true;
		s->vm_start = PNUM(p->vms);
		s->vm_end = PNUM(p->vme);
	}
	if (p->crss[0].size) {
		ev->has_site = s->has_child_rss = true;
		for (int k = 0; k < 4; k++)
			s->child_rss[k] = PSNUM(p->crss[k]);
	}
	if (p->prss[0].size) {
		ev->has_site = s->has_parent_mm = true;
		for (int k = 0; k < 4; k++)
			s->parent_rss[k] = PSNUM(p->prss[k]);
		s->parent_pte = PSNUM(p->ppte);
		s->parent_maps = PSNUM(p->pmaps);
	}
}

/* The probe of event id @type, or NULL. */
static const struct probe *probe_of(const struct pt_raw_decoder *d, int type)
{
	int64_t at = (int64_t)type - d->probe_base;

	if (at >= 0 && at < PROBE_SPAN)
		return d->probe_at[at] ? &d->probe[d->probe_at[at] - 1] : NULL;
	for (int i = 0; i < d->nr_probes; i++)
		if (d->probe[i].id == type)
			return &d->probe[i];
	return NULL;
}

/* A kprobe (ENTRY, or a pass start or end) or kretprobe (EXIT) record of the
 * added group: the function's address, no depth, no kernel call/return
 * times, and what the probe fetched. 1, or 0. */
static int decode_probe(const struct pt_raw_decoder *d, const void *data, int size, int type,
			struct pt_raw_event *ev)
{
	const struct probe *p = probe_of(d, type);
	bool good = true, *ok = &good, fast; /* PNUM() clears *ok on the checked path */

	if (!p)
		return 0;
	fast = d->native && size >= p->need;
	ev->type = p->type;
	ev->func = p->type == PT_EV_ENTRY || p->type == PT_EV_EXIT ? PNUM(p->at) : 0;
	ev->calltime = ev->rettime = PT_NO_TIME;
	ev->overrun = -1;
	if (p->task.size) {
		ev->ctr.task = PNUM(p->task);
		ev->ctr.nivcsw = PNUM(p->niv);
		ev->ctr.pcount = PNUM(p->runs);
		ev->ctr.run_delay = PNUM(p->wait);
	}
	decode_site(d, data, size, p, ev, fast, ok);
	/* a probe handler runs with interrupts off: its record says so,
	 * but the code it stands for ran in the task */
	ev->in_irq = ev->in_irq && p->type != PT_EV_PASS_START && p->type != PT_EV_PASS_END;
	return good;
}

/* The record's common fields: its type (-1: unreadable), @ev's task and
 * whether it ran in an interrupt. */
static int decode_common(const struct pt_raw_decoder *d, const void *data, int size,
			 struct pt_raw_event *ev)
{
	bool ok = true;
	uint64_t fl = 0;
	int type;

	if (d->std_common && size >= 8) {
		/* struct trace_entry as every kernel lays it out: u16 type, u8
		 * flags, u8 preempt_count, s32 pid (checked by the decoder) */
		const uint8_t *h = data;
		uint16_t t;
		int32_t pid;

		memcpy(&t, h, 2);
		memcpy(&pid, h + 4, 4);
		type = t;
		ev->pid = pid;
		fl = h[2];
	} else {
		bool fok = true;

		type = (int)num(d, data, size, d->type, &ok);
		ev->pid = (int)(int32_t)num(d, data, size, d->pid, &ok);
		if (d->flags.size) {
			fl = num(d, data, size, d->flags, &fok);
			if (!fok)
				fl = 0;
		}
	}
	/* TRACE_FLAG_HARDIRQ | TRACE_FLAG_SOFTIRQ | TRACE_FLAG_NMI, or
	 * TRACE_FLAG_IRQS_OFF: the fork path never runs with interrupts off,
	 * but interrupt entry and exit code outside the hardirq flag does, and
	 * its spinlocks would sit among a pass's locks (seen on 7.2 and 6.12-rt
	 * under a lock-level filter) */
	ev->in_irq = (fl & (0x01 | 0x08 | 0x10 | 0x40)) != 0;
	return ok ? type : -1;
}

int pt_raw_decode(const struct pt_raw_decoder *d, const void *data, int size,
		  struct pt_raw_event *ev)
{
	bool ok = true;
	int type;

	if (!data || size <= 0)
		return 0;
	/* the site is cleared by the probes that fill it: most records have none */
	memset(ev, 0, offsetof(struct pt_raw_event, site));
	type = decode_common(d, data, size, ev);
	if (type < 0)
		return 0;
	ev->depth = -1;
	ev->child_pid = -1;
	if (type == d->entry_id) {
		ev->type = PT_EV_ENTRY;
		ev->func = num(d, data, size, d->e_func, &ok);
		ev->depth = (int)(int32_t)num(d, data, size, d->e_depth, &ok);
	} else if (type == d->exit_id) {
		ev->type = PT_EV_EXIT;
		ev->func = num(d, data, size, d->x_func, &ok);
		ev->depth = (int)(int32_t)num(d, data, size, d->x_depth, &ok);
		ev->calltime = num(d, data, size, d->x_call, &ok);
		ev->rettime = num(d, data, size, d->x_ret, &ok);
		ev->overrun = -1;
		if (d->x_over.size) {
			bool ook = true;
			uint64_t o = num(d, data, size, d->x_over, &ook);

			if (ook && o <= INT64_MAX)
				ev->overrun = (int64_t)o;
		}
	} else if (type == d->fork_id) {
		ev->type = PT_EV_FORK;
		ev->pid = (int)(int32_t)num(d, data, size, d->f_ppid, &ok);
		ev->child_pid = (int)(int32_t)num(d, data, size, d->f_cpid, &ok);
		str(d, data, size, d->f_pcomm, ev->parent_comm, sizeof(ev->parent_comm));
		str(d, data, size, d->f_ccomm, ev->child_comm, sizeof(ev->child_comm));
	} else if (type == d->newtask_id) {
		ev->type = PT_EV_NEWTASK;
		ev->child_pid = (int)(int32_t)num(d, data, size, d->n_pid, &ok);
		ev->clone_flags = num(d, data, size, d->n_flags, &ok);
	} else if (type == d->switch_id) {
		ev->type = PT_EV_SWITCH;
		ev->pid = (int)(int32_t)num(d, data, size, d->s_prev_pid, &ok);
		ev->child_pid = (int)(int32_t)num(d, data, size, d->s_next_pid, &ok);
		ev->preempted = (num(d, data, size, d->s_prev_state, &ok) & d->preempt_mask) != 0;
	} else {
		return ok && decode_probe(d, data, size, type, ev);
	}
	if (!ok || ((ev->type == PT_EV_ENTRY || ev->type == PT_EV_EXIT) &&
		    (ev->depth < 0 || ev->depth > 4096)))
		return 0;
	return 1;
}

int pt_raw_to_event(const struct pt_raw_event *raw, int cpu, uint64_t ts, struct pt_event *ev)
{
	pt_event_init(ev, raw->type);
	ev->cpu = cpu;
	ev->pid = raw->pid;
	ev->in_irq = raw->in_irq;
	switch (raw->type) {
	case PT_EV_FORK:
		ev->ts_ns = ts;
		ev->comm = raw->parent_comm;
		ev->child_pid = raw->child_pid;
		ev->child_comm = raw->child_comm;
		return 0;
	case PT_EV_ENTRY:
		ev->ts_ns = ts;
		ev->depth = raw->depth;
		ev->ctr = raw->ctr;
		ev->site = raw->has_site ? &raw->site : NULL;
		return 0;
	case PT_EV_PASS_START:
	case PT_EV_PASS_END:
		ev->ts_ns = ts;
		ev->site = &raw->site;
		return 0;
	case PT_EV_NEWTASK:
		ev->ts_ns = ts;
		ev->child_pid = raw->child_pid;
		ev->clone_flags = raw->clone_flags;
		return 0;
	case PT_EV_SWITCH:
		ev->ts_ns = ts;
		ev->next_pid = raw->child_pid;
		ev->preempted = raw->preempted;
		return 0;
	case PT_EV_EXIT:
		ev->depth = raw->depth;
		ev->rec_ts_ns = ts;
		ev->overrun = raw->overrun;
		if (raw->rettime == PT_NO_TIME) { /* a kretprobe: it returned now */
			ev->ts_ns = ts;
			return 0;
		}
		ev->call_ns = raw->calltime;
		ev->ts_ns = raw->rettime;
		ev->dur_ns = raw->rettime >= raw->calltime ? raw->rettime - raw->calltime
							   : PT_NO_TIME;
		return 0;
	default:
		return -EINVAL;
	}
}
