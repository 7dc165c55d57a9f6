/* SPDX-License-Identifier: MIT */
/*
 * Text and JSON reports (report.h). JSON goes through jansson; the text
 * report is a summary table per phase, the per-process breakdown and the
 * slowest forks, sized to fit a terminal whatever the number of forks.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "cost.h"
#include "escape.h"
#include "report.h"

#define TEXT_SLOWEST 20

static json_t *ns_or_null(uint64_t v)
{
	return v == PT_NO_TIME ? json_null() : json_integer((json_int_t)v);
}

static json_t *count_or_null(int64_t v)
{
	return v == PT_NULL ? json_null() : json_integer((json_int_t)v);
}

/* "parent_mem": null when nothing was read (replays), else every field, null if unknown. */
static json_t *mem_json(const struct pt_parent_mem *m)
{
	json_t *o;

	if (!m->have)
		return json_null();
	o = json_object();
	for (int k = 0; k < PT_MEM_COUNT; k++) {
		json_t *v = !pt_mem_has(m, k)	     ? json_null()
			    : k == PT_MEM_CHILD_EXEC ? json_boolean(m->v[k] != 0)
						     : json_integer((json_int_t)m->v[k]);

		json_object_set_new(o, pt_mem_names[k], v);
	}
	return o;
}

static json_t *real_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* "cost": the fork's cost model (cost.h), each figure null where unknown. */
static json_t *cost_json(const struct pt_fork *f)
{
	struct pt_fork_cost c;
	const char *band;

	pt_fork_cost(f, &c);
	band = pt_band_name(c.band);
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "ms_per_gib_rss",
			 real_or_null(c.ms_per_gib_rss), "gb_per_s", real_or_null(c.gb_per_s),
			 "fork_rate_band", band ? json_string(band) : json_null(), "pte_bytes",
			 c.pte_bytes >= 0 ? json_integer(c.pte_bytes) : json_null(), "ns_per_pte",
			 real_or_null(c.ns_per_pte), "copy_share", real_or_null(c.copy_share),
			 "offcpu_share", real_or_null(c.offcpu_share));
}

/* "kind", "clone_flags" and where the fork came from: cgroup, systemd_unit, container_id. */
static void origin_json(json_t *o, const struct pt_fork *f)
{
	char unit[PT_CGROUP_MAX], id[80];

	json_object_set_new(o, "kind",
			    f->kind == PT_KIND_UNKNOWN || f->kind >= PT_KIND_COUNT
				? json_null()
				: json_string(pt_kind_name(f->kind)));
	json_object_set_new(o, "clone_flags", f->has_clone_flags
						  ? json_integer((json_int_t)f->clone_flags)
						  : json_null());
	json_object_set_new(o, "cgroup", f->cgroup[0] ? pt_json_text(f->cgroup) : json_null());
	json_object_set_new(o, "systemd_unit", pt_cgroup_unit(f->cgroup, unit, sizeof(unit))
						   ? pt_json_text(unit)
						   : json_null());
	json_object_set_new(o, "container_id", pt_cgroup_container(f->cgroup, id, sizeof(id))
						   ? json_string(id)
						   : json_null());
}

json_t *pt_fork_json(const struct pt_fork *f)
{
	json_t *flags = json_array(), *o;

	for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
		if (f->flags & (1u << b))
			json_array_append_new(flags, json_string(pt_fork_flag_names[b]));
	o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "parent_pid",
		      f->parent_pid >= 0 ? json_integer(f->parent_pid) : json_null(), "parent_comm",
		      f->parent_comm[0] ? pt_json_text(f->parent_comm) : json_null(), "child_pid",
		      f->child_pid >= 0 ? json_integer(f->child_pid) : json_null(), "ts_ns",
		      ns_or_null(f->ts_ns), "kernel_clone_ns", ns_or_null(f->kernel_clone_ns),
		      "copy_process_ns", ns_or_null(f->copy_process_ns), "dup_mmap_ns",
		      ns_or_null(f->dup_mmap_ns), "copy_page_range_ns",
		      ns_or_null(f->copy_page_range_ns), "total_ns",
		      ns_or_null(pt_fork_total_ns(f)), "vmas", count_or_null(f->vmas), "pte_passes",
		      count_or_null(f->pte_passes), "lock_breaks", count_or_null(f->lock_breaks),
		      "ptes", count_or_null(f->ptes), "max_lock_hold_ns",
		      ns_or_null(f->max_lock_hold_ns));
	if (!o) {
		json_decref(flags);
		return NULL;
	}
	json_object_set_new(o, "copy_resched", count_or_null(f->copy_resched));
	json_object_set_new(o, "copy_offcpu_ns", ns_or_null(f->copy_offcpu_ns));
	json_object_set_new(o, "parent_mem", mem_json(&f->mem));
	json_object_set_new(o, "cost", cost_json(f));
	origin_json(o, f);
	json_object_set_new(o, "complete", json_boolean(f->complete));
	json_object_set_new(o, "flags", flags);
	return o;
}

static json_t *dist_json(const struct pt_dist *d)
{
	if (!d->count)
		return json_pack("{s:i,s:n,s:n,s:n,s:n,s:n,s:n}", "count", 0, "p50", "p90",
				 "p99", "p999", "max", "mean");
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "count", (json_int_t)d->count, "p50",
			 (json_int_t)d->p50, "p90", (json_int_t)d->p90, "p99", (json_int_t)d->p99,
			 "p999", (json_int_t)d->p999, "max", (json_int_t)d->max, "mean", d->mean);
}

static json_t *hist_json(const struct pt_hist *h)
{
	json_t *a = json_array();

	for (size_t i = 0; i < PT_HIST_BUCKETS; i++)
		if (h->count[i])
			json_array_append_new(a, json_pack("{s:I,s:I}", "le_ns",
							   (json_int_t)pt_hist_upper(i), "count",
							   (json_int_t)h->count[i]));
	return a;
}

json_t *pt_summary_json(const struct pt_summary *s)
{
	json_t *phases = json_object(), *hists = json_object(), *flagged = json_object();
	json_t *comms = json_array(), *kinds = json_object(), *over = json_array(), *o;
	char key[64];

	for (int p = 0; p < PT_PHASE_COUNT; p++) {
		snprintf(key, sizeof(key), "%s_ns", pt_phase_name((enum pt_phase)p));
		json_object_set_new(phases, key, dist_json(&s->phase[p]));
		json_object_set_new(hists, key, hist_json(&s->hist[p]));
	}
	for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
		json_object_set_new(flagged, pt_fork_flag_names[b],
				    json_integer((json_int_t)s->flagged[b]));
	for (int k = 0; k < PT_KIND_COUNT; k++)
		json_object_set_new(kinds, pt_kind_name(k), json_integer((json_int_t)s->kinds[k]));
	for (int k = 0; k < PT_KIND_COUNT; k++)
		if (s->kinds_mask & (1u << k))
			json_array_append_new(over, json_string(pt_kind_name(k)));
	for (size_t i = 0; i < s->nr_comms; i++) {
		const struct pt_comm_stats *c = &s->by_comm[i];

		json_array_append_new(
		    comms,
		    json_pack(
			"{s:o,s:I,s:I,s:I,s:o,s:o,s:o}", "comm", pt_json_text(c->comm), "forks",
			(json_int_t)c->forks, "complete", (json_int_t)c->complete, "timed",
			(json_int_t)c->total.count, "p50_ns",
			c->total.count ? json_integer((json_int_t)c->total.p50) : json_null(),
			"p99_ns",
			c->total.count ? json_integer((json_int_t)c->total.p99) : json_null(),
			"max_ns",
			c->total.count ? json_integer((json_int_t)c->total.max) : json_null()));
	}
	o = json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o}",
			 "forks", (json_int_t)s->forks, "complete", (json_int_t)s->complete,
			 "flagged", flagged, "phases", phases, "fork_ns", dist_json(&s->total),
			 "max_lock_hold_ns", dist_json(&s->lock_hold), "vmas",
			 (json_int_t)s->vmas, "pte_passes", (json_int_t)s->passes, "lock_breaks",
			 (json_int_t)s->lock_breaks, "forks_with_lock_breaks",
			 (json_int_t)s->forks_with_breaks, "ptes", (json_int_t)s->ptes,
			 "ns_per_pte", s->ns_per_pte > 0 ? json_real(s->ns_per_pte) : json_null(),
			 "ms_per_gib", s->ms_per_gib > 0 ? json_real(s->ms_per_gib) : json_null(),
			 "histograms", hists, "by_comm", comms);
	if (o) {
		/* what the figures are over (address-space copies by default), and the count of each kind */
		json_object_set_new(o, "kinds_counted", over);
		json_object_set_new(o, "kinds", kinds);
	} else {
		json_decref(over);
		json_decref(kinds);
	}
	return o;
}

static json_t *input_json(const struct pt_report_input *in)
{
	const struct pt_input_stats *st = &in->stats;

	return json_pack("{s:o,s:s,s:I,s:I,s:b,s:I,s:I,s:I,s:o,s:b}", "path",
			 pt_json_text(in->path), "format", pt_format_name(in->format), "events",
			 (json_int_t)st->events, "events_lost", (json_int_t)st->lost_events,
			 "events_lost_unknown", st->lost_unknown, "lines", (json_int_t)st->lines,
			 "unparsed_lines", (json_int_t)st->unparsed_lines, "forks",
			 (json_int_t)in->forks, "error",
			 in->error ? pt_json_text(in->error) : json_null(), "skipped", in->skipped);
}

static int write_json(FILE *out, const struct pt_report_input *inputs, size_t nr_inputs,
		      const struct pt_fork *forks, size_t nr_forks, const struct pt_summary *s)
{
	json_t *root, *jin = json_array(), *jforks = json_array();
	int ret = 0;

	for (size_t i = 0; i < nr_inputs; i++)
		json_array_append_new(jin, input_json(&inputs[i]));
	for (size_t i = 0; i < nr_forks; i++)
		json_array_append_new(jforks, pt_fork_json(&forks[i]));
	root = json_pack("{s:o,s:o,s:o}", "inputs", jin, "forks", jforks, "summary",
			 pt_summary_json(s));
	if (!root)
		return -ENOMEM;
	if (json_dumpf(root, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER) || fputc('\n', out) == EOF)
		ret = -EIO;
	json_decref(root);
	return ret;
}

const char *pt_format_ns(char *buf, size_t len, uint64_t ns, bool us_floor)
{
	if (ns == PT_NO_TIME)
		snprintf(buf, len, "-");
	else if (ns < 1000 && !us_floor)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
	return buf;
}

static const char *fmt_count(char *buf, size_t len, int64_t v)
{
	if (v == PT_NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%" PRId64, v);
	return buf;
}

static void text_dist_row(FILE *out, const char *name, const struct pt_dist *d)
{
	char a[24], b[24], c[24], e[24], f[24];

	if (!d->count) {
		fprintf(out, "  %-22s %7s   (no complete fork carries it)\n", name, "0");
		return;
	}
	fprintf(
	    out, "  %-22s %7zu %10s %10s %10s %10s %10s\n", name, d->count,
	    pt_format_ns(a, sizeof(a), d->p50, false), pt_format_ns(b, sizeof(b), d->p90, false),
	    pt_format_ns(c, sizeof(c), d->p99, false), pt_format_ns(e, sizeof(e), d->p999, false),
	    pt_format_ns(f, sizeof(f), d->max, false));
}

static int cmp_total_desc(const void *a, const void *b)
{
	const struct pt_fork *const *x = a, *const *y = b;
	uint64_t tx = pt_fork_total_ns(*x), ty = pt_fork_total_ns(*y);

	tx = tx == PT_NO_TIME ? 0 : tx;
	ty = ty == PT_NO_TIME ? 0 : ty;
	return tx < ty ? 1 : tx > ty ? -1 : 0;
}

static void text_inputs(FILE *out, const struct pt_report_input *inputs, size_t nr_inputs)
{
	fprintf(out, "inputs\n");
	for (size_t i = 0; i < nr_inputs; i++) {
		const struct pt_report_input *in = &inputs[i];

		if (in->error) {
			fprintf(out, "  %s: error: %s\n", in->path, in->error);
			continue;
		}
		if (in->skipped) {
			fprintf(out, "  %s: already stored, skipped\n", in->path);
			continue;
		}
		fprintf(out, "  %s: %s, %" PRIu64 " events, %zu forks", in->path,
			pt_format_name(in->format), in->stats.events, in->forks);
		if (in->stats.lost_events || in->stats.lost_unknown)
			fprintf(out, ", %s%" PRIu64 " events LOST", in->stats.lost_unknown ? ">= " : "",
				in->stats.lost_events);
		if (in->stats.unparsed_lines)
			fprintf(out, ", %" PRIu64 " lines not understood", in->stats.unparsed_lines);
		fprintf(out, "\n");
	}
}

static void text_summary(FILE *out, const struct pt_summary *s)
{
	char b1[24], b2[24], b3[24];

	fprintf(out, "\nclones by kind:");
	for (int k = PT_KIND_FORK; k < PT_KIND_COUNT; k++)
		fprintf(out, " %s %zu,", pt_kind_name(k), s->kinds[k]);
	fprintf(out, " unknown %zu\n", s->kinds[PT_KIND_UNKNOWN]);
	fprintf(out, "forks: %zu, complete: %zu", s->forks, s->complete);
	for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
		if (s->flagged[b])
			fprintf(out, ", %s: %zu", pt_fork_flag_names[b], s->flagged[b]);
	fprintf(out, "\n(statistics below are over complete %s only)\n\n",
		s->kinds_mask == PT_KINDS_FORK ? "forks that copied an address space"
					       : "forks of the kinds asked for");
	fprintf(out, "  %-22s %7s %10s %10s %10s %10s %10s\n", "phase", "forks", "p50", "p90", "p99",
		"p99.9", "max");
	for (int p = 0; p < PT_PHASE_COUNT; p++)
		text_dist_row(out, pt_phase_name((enum pt_phase)p), &s->phase[p]);
	text_dist_row(out, "PTE lock hold (max)", &s->lock_hold);
	fprintf(out, "\n  VMAs copied %" PRIu64 ", PTE passes %" PRIu64 ", lock breaks %" PRIu64
		     " (in %zu forks), PTEs copied %" PRIu64 "\n",
		s->vmas, s->passes, s->lock_breaks, s->forks_with_breaks, s->ptes);
	if (s->ns_per_pte > 0)
		fprintf(out, "  cost: %.0f ns per PTE, %.1f ms per GiB copied (copy_page_range)\n",
			s->ns_per_pte, s->ms_per_gib);
	if (!s->nr_comms)
		return;
	fprintf(out, "\n  %-22s %7s %10s %10s %10s\n", "process", "forks", "p50", "p99", "max");
	for (size_t i = 0; i < s->nr_comms && i < 10; i++) {
		const struct pt_comm_stats *c = &s->by_comm[i];
		char comm[PT_ESC_SIZE(sizeof(c->comm))];

		pt_escape(c->comm, PT_ESC_CONTROL, comm, sizeof(comm));
		fprintf(out, "  %-22s %7zu %10s %10s %10s\n", comm[0] ? comm : "(unknown)",
			c->forks,
			c->total.count ? pt_format_ns(b1, sizeof(b1), c->total.p50, false) : "-",
			c->total.count ? pt_format_ns(b2, sizeof(b2), c->total.p99, false) : "-",
			c->total.count ? pt_format_ns(b3, sizeof(b3), c->total.max, false) : "-");
	}
	if (s->nr_comms > 10)
		fprintf(out, "  (%zu more processes)\n", s->nr_comms - 10);
}

static void text_fork_row(FILE *out, const struct pt_fork *f)
{
	char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24], b7[24], b8[24];
	char who[PT_ESC_SIZE(sizeof(f->parent_comm)) + 16], flags[64] = "";
	char comm[PT_ESC_SIZE(sizeof(f->parent_comm))];

	pt_escape(f->parent_comm, PT_ESC_CONTROL, comm, sizeof(comm));
	if (f->parent_pid >= 0)
		snprintf(who, sizeof(who), "%s-%d", comm[0] ? comm : "?", f->parent_pid);
	else
		snprintf(who, sizeof(who), "%s", comm[0] ? comm : "?");
	if (f->kind != PT_KIND_FORK && f->kind < PT_KIND_COUNT)
		snprintf(flags, sizeof(flags), "[%s]", pt_kind_name(f->kind));
	for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
		if (f->flags & (1u << b))
			snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags), "%s%s",
				 flags[0] ? "," : "", pt_fork_flag_names[b]);
	fprintf(out, "  %-20s %7s %10s %10s %5s %6s %6s %7s %10s  %s\n", who,
		f->child_pid >= 0 ? fmt_count(b1, sizeof(b1), f->child_pid) : "-",
		pt_format_ns(b2, sizeof(b2), pt_fork_total_ns(f), false),
		pt_format_ns(b3, sizeof(b3), f->copy_page_range_ns, false),
		fmt_count(b4, sizeof(b4), f->vmas), fmt_count(b5, sizeof(b5), f->pte_passes),
		fmt_count(b6, sizeof(b6), f->lock_breaks), fmt_count(b7, sizeof(b7), f->ptes),
		pt_format_ns(b8, sizeof(b8), f->max_lock_hold_ns, false), flags);
}

/* The slowest forks (all of them when few). */
static int text_forks(FILE *out, const struct pt_fork *forks, size_t nr_forks)
{
	const struct pt_fork **order;
	size_t shown;

	if (!nr_forks)
		return 0;
	order = malloc(nr_forks * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < nr_forks; i++)
		order[i] = &forks[i];
	qsort(order, nr_forks, sizeof(*order), cmp_total_desc);
	shown = nr_forks < TEXT_SLOWEST ? nr_forks : TEXT_SLOWEST;
	fprintf(out, "\n%s forks%s\n", nr_forks <= TEXT_SLOWEST ? "all" : "slowest",
		nr_forks <= TEXT_SLOWEST ? "" : " (--format json lists them all)");
	fprintf(out, "  %-20s %7s %10s %10s %5s %6s %6s %7s %10s  %s\n", "parent", "child", "fork",
		"cpr", "vmas", "passes", "breaks", "ptes", "max hold", "flags");
	for (size_t i = 0; i < shown; i++)
		text_fork_row(out, order[i]);
	free(order);
	return 0;
}

static int write_text(FILE *out, const struct pt_report_input *inputs, size_t nr_inputs,
		      const struct pt_fork *forks, size_t nr_forks, const struct pt_summary *s)
{
	int ret;

	text_inputs(out, inputs, nr_inputs);
	text_summary(out, s);
	ret = text_forks(out, forks, nr_forks);
	if (ret)
		return ret;
	return ferror(out) ? -EIO : 0;
}

int pt_report_write(FILE *out, enum pt_report_format fmt, unsigned kinds,
		    const struct pt_report_input *inputs, size_t nr_inputs,
		    const struct pt_fork *forks, size_t nr_forks)
{
	struct pt_summary s;
	int ret = pt_summary_compute_kinds(forks, nr_forks, kinds ? kinds : PT_KINDS_FORK, &s);

	if (ret)
		return ret;
	if (fmt == PT_REPORT_JSON)
		ret = write_json(out, inputs, nr_inputs, forks, nr_forks, &s);
	else
		ret = write_text(out, inputs, nr_inputs, forks, nr_forks, &s);
	pt_summary_release(&s);
	if (!ret && fflush(out))
		ret = -EIO;
	return ret;
}
