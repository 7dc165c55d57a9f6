/* SPDX-License-Identifier: MIT */
/*
 * The doctor's report (doctor.h) as JSON (the CLI's --format json and GET
 * /api/v1/doctor) and as text for a terminal: per slow process, where the
 * time went, the figures, each rule's verdict with its evidence, and the
 * advice of the rules that fire.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "cost.h"
#include "doctor.h"
#include "report.h"

static json_t *real_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

static json_t *int_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *figures_json(const struct pt_doctor_proc *p)
{
	const char *band = pt_band_name(pt_rate_band_of(p->gb_per_s));
	json_t *o = json_object();

	json_object_set_new(o, "copy_share", real_or_null(p->copy_share));
	json_object_set_new(o, "offcpu_share", real_or_null(p->offcpu_share));
	json_object_set_new(o, "ns_per_pte", real_or_null(p->ns_per_pte));
	json_object_set_new(o, "ms_per_gib_rss", real_or_null(p->ms_per_gib_rss));
	json_object_set_new(o, "gb_per_s", real_or_null(p->gb_per_s));
	json_object_set_new(o, "fork_rate_band", band ? json_string(band) : json_null());
	json_object_set_new(o, "ptes", int_or_null(p->ptes));
	json_object_set_new(o, "pte_tables", int_or_null(p->pte_tables));
	json_object_set_new(o, "vmas", int_or_null(p->vmas));
	json_object_set_new(o, "rss_bytes", int_or_null(p->rss_bytes));
	json_object_set_new(o, "pte_bytes", int_or_null(p->pte_bytes));
	json_object_set_new(o, "map_count", int_or_null(p->map_count));
	json_object_set_new(o, "anon_huge_bytes", int_or_null(p->anon_huge_bytes));
	json_object_set_new(o, "huge_pmds_copied", json_boolean(p->huge_seen));
	json_object_set_new(o, "lock_breaks", int_or_null(p->lock_breaks));
	json_object_set_new(o, "forks_with_lock_breaks",
			    json_integer((json_int_t)p->forks_with_breaks));
	json_object_set_new(o, "children_exec_known", json_integer((json_int_t)p->exec_known));
	json_object_set_new(o, "children_execd", json_integer((json_int_t)p->exec_yes));
	return o;
}

static json_t *baseline_json(const struct pt_doctor_proc *p)
{
	static const char *const kinds[] = {"rss", "ptes"};
	json_t *ids = json_array();

	if (p->baseline_kind == PT_BASELINE_NONE) {
		json_decref(ids);
		return json_null();
	}
	for (size_t i = 0; i < p->nr_regression_ids; i++)
		json_array_append_new(ids, json_integer((json_int_t)p->regression_ids[i]));
	return json_pack("{s:s,s:f,s:I,s:o,s:I,s:o}", "per_gib_of", kinds[p->baseline_kind],
			 "ms_per_gib", p->baseline_ms_per_gib, "forks",
			 (json_int_t)p->baseline_forks, "worst_ms_per_gib",
			 real_or_null(p->worst_ms_per_gib), "regressions",
			 (json_int_t)p->regressions, "regression_forks", ids);
}

static json_t *proc_json(const struct pt_doctor_proc *p)
{
	json_t *shares = json_object(), *ids = json_array(), *findings = json_array(), *o;

	for (int k = 0; k < PT_COMP_COUNT; k++)
		json_object_set_new(shares, pt_component_name(k), real_or_null(p->share[k]));
	for (size_t i = 0; i < p->nr_slowest; i++)
		json_array_append_new(ids, json_integer((json_int_t)p->slowest[i]));
	for (size_t r = 0; r < pt_doctor_nr_rules; r++) {
		const struct pt_doctor_rule *rule = &pt_doctor_rules[r];

		json_array_append_new(findings, json_pack("{s:s,s:s,s:s,s:o}", "rule", rule->id,
							  "verdict", pt_verdict_name(p->verdict[r]),
							  "evidence", p->evidence[r], "advice",
							  p->verdict[r] == PT_VERDICT_FIRES
							      ? json_string(rule->advice)
							      : json_null()));
	}
	o = json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "comm", p->comm, "pid",
		      p->pid >= 0 ? json_integer(p->pid) : json_null(), "forks",
		      (json_int_t)p->forks, "complete", (json_int_t)p->complete, "p50_ns",
		      (json_int_t)p->p50_ns, "max_ns", (json_int_t)p->max_ns, "slowest_forks", ids,
		      "time_shares", shares, "dominant",
		      p->dominant >= 0 ? json_string(pt_component_name(p->dominant)) : json_null(),
		      "figures", figures_json(p), "findings", findings);
	if (o)
		json_object_set_new(o, "baseline", baseline_json(p));
	return o;
}

json_t *pt_doctor_json(const struct pt_doctor_report *r)
{
	json_t *rules = json_array(), *procs = json_array();

	for (size_t i = 0; i < pt_doctor_nr_rules; i++) {
		const struct pt_doctor_rule *x = &pt_doctor_rules[i];

		json_array_append_new(
		    rules, json_pack("{s:s,s:s,s:s,s:s,s:f,s:f}", "id", x->id, "title", x->title,
				     "advice", x->advice, "source", x->source, "threshold",
				     x->threshold, "size_min_bytes", x->size_min));
	}
	for (size_t i = 0; i < r->nr_procs; i++)
		json_array_append_new(procs, proc_json(&r->procs[i]));
	return json_pack("{s:I,s:I,s:I,s:I,s:s,s:o,s:o}", "slow_ns", (json_int_t)r->slow_ns,
			 "forks", (json_int_t)r->forks, "complete", (json_int_t)r->complete,
			 "processes", (json_int_t)r->processes, "fork_ids",
			 r->ids_are_store_ids ? "store" : "position", "rules", rules,
			 "slow_processes", procs);
}

static void text_shares(FILE *out, const struct pt_doctor_proc *p)
{
	bool any = false;

	fprintf(out, "  time:");
	for (int k = 0; k < PT_COMP_COUNT; k++) {
		if (isnan(p->share[k]))
			continue;
		fprintf(out, "%s %s %.0f%%", any ? "," : "", pt_component_name(k),
			100 * p->share[k]);
		any = true;
	}
	if (!any)
		fprintf(out, " unknown (the forks carry no nested phases)\n");
	else
		fprintf(out, "; dominant: %s\n", pt_component_name(p->dominant));
}

/* Appends one ", figure" (the first without the comma). */
static void fig(FILE *out, bool *first, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fig(FILE *out, bool *first, const char *fmt, ...)
{
	va_list ap;

	fputs(*first ? " " : ", ", out);
	*first = false;
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
}

static void text_figures(FILE *out, const struct pt_doctor_proc *p)
{
	bool first = true;

	fprintf(out, "  figures (medians of complete forks):");
	if (p->rss_bytes >= 0)
		fig(out, &first, "RSS %.0f MiB", p->rss_bytes / 1048576.0);
	if (p->pte_bytes >= 0)
		fig(out, &first, "page tables %.0f KiB", p->pte_bytes / 1024.0);
	if (p->map_count >= 0)
		fig(out, &first, "%" PRId64 " VMAs in the parent", p->map_count);
	if (p->anon_huge_bytes >= 0)
		fig(out, &first, "THP %.0f MiB", p->anon_huge_bytes / 1048576.0);
	if (p->vmas >= 0)
		fig(out, &first, "%" PRId64 " VMAs copied", p->vmas);
	if (p->ptes >= 0)
		fig(out, &first, "%" PRId64 " PTEs", p->ptes);
	if (p->pte_tables >= 0)
		fig(out, &first, "%" PRId64 " PTE tables", p->pte_tables);
	if (!isnan(p->ns_per_pte))
		fig(out, &first, "%.0f ns per PTE", p->ns_per_pte);
	if (!isnan(p->gb_per_s))
		fig(out, &first, "%.1f GB/s (%s), %.1f ms per GiB RSS", p->gb_per_s,
		    pt_band_name(pt_rate_band_of(p->gb_per_s)), p->ms_per_gib_rss);
	if (p->lock_breaks >= 0)
		fig(out, &first, "%" PRId64 " lock breaks in %zu forks", p->lock_breaks,
		    p->forks_with_breaks);
	fputs(first ? " none\n" : "\n", out);
}

static void text_proc(FILE *out, const struct pt_doctor_report *r, const struct pt_doctor_proc *p)
{
	char a[32], b[32];

	fprintf(out, "\n%s (pid %d): %zu forks (%zu complete), p50 %s, max %s; slowest %s:",
		p->comm[0] ? p->comm : "(unknown)", p->pid, p->forks, p->complete,
		pt_format_ns(a, sizeof(a), p->p50_ns, true),
		pt_format_ns(b, sizeof(b), p->max_ns, true),
		r->ids_are_store_ids ? "fork ids" : "forks (position in the report)");
	for (size_t i = 0; i < p->nr_slowest; i++)
		fprintf(out, " %" PRId64, p->slowest[i]);
	fprintf(out, "\n");
	text_shares(out, p);
	text_figures(out, p);
	if (p->nr_regression_ids) {
		fprintf(out, "  regressions (%s):", r->ids_are_store_ids ? "fork ids" : "forks");
		for (size_t i = 0; i < p->nr_regression_ids; i++)
			fprintf(out, " %" PRId64, p->regression_ids[i]);
		fprintf(out, "\n");
	}
	for (size_t i = 0; i < pt_doctor_nr_rules; i++) {
		static const char *const tag[] = {"FIRES", "quiet", "cannot judge"};

		fprintf(out, "  [%s] %s: %s\n", tag[p->verdict[i]], pt_doctor_rules[i].id,
			p->evidence[i]);
		if (p->verdict[i] == PT_VERDICT_FIRES)
			fprintf(out, "      advice: %s\n      source: %s\n",
				pt_doctor_rules[i].advice, pt_doctor_rules[i].source);
	}
}

int pt_doctor_write_text(FILE *out, const struct pt_doctor_report *r)
{
	char a[32];

	fprintf(out, "%zu forks (%zu complete) from %zu processes; %zu with a fork of %s or more",
		r->forks, r->complete, r->processes, r->nr_procs,
		pt_format_ns(a, sizeof(a), r->slow_ns, true));
	fprintf(out, r->nr_procs ? " (slowest first):\n" : ": nothing to examine.\n");
	for (size_t i = 0; i < r->nr_procs; i++)
		text_proc(out, r, &r->procs[i]);
	return ferror(out) ? -EIO : 0;
}
