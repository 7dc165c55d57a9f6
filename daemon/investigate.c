/* SPDX-License-Identifier: MIT */
/*
 * Investigation bookkeeping (see investigate.h): admission (one at a time,
 * budget, cool-down), expiry, cost, history, the minute buckets of the
 * budget window and the JSON the API shows. Pure: times come from the caller.
 */
#include "investigate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define NS_PER_S 1000000000ull
#define MINUTE_NS (60 * NS_PER_S)
#define HOUR_NS (3600 * NS_PER_S)
#define PROC_SCAN_MAX (1u << 17)

const char *pd_inv_reason_name(enum pd_inv_reason r)
{
	return r == PD_INV_AUTO ? "auto" : "api";
}

const char *pd_inv_refusal_name(enum pd_inv_refusal r)
{
	static const char *const n[] = {"active", "budget", "cooldown", "capture", "error"};

	return (unsigned)r < PD_INV_REFUSED_COUNT ? n[r] : "?";
}

const char *pd_inv_end_name(enum pd_inv_end e)
{
	static const char *const n[] = {NULL, "time", "api", "stop", "reload", "error"};

	return (unsigned)e <= PD_INV_END_ERROR ? n[e] : "?";
}

void pd_inv_policy_from_config(const struct pd_config *c, struct pd_inv_policy *p)
{
	p->max_ns = (uint64_t)c->investigation_max_s * NS_PER_S;
	p->auto_ns = (uint64_t)c->auto_investigate_s * NS_PER_S;
	if (p->auto_ns > p->max_ns)
		p->auto_ns = p->max_ns;
	p->cooldown_ns = (uint64_t)c->investigation_cooldown_s * NS_PER_S;
	p->budget = c->investigation_budget;
}

void pd_inv_init(struct pd_inv_state *s, const struct pd_inv_policy *p)
{
	memset(s, 0, sizeof(*s));
	s->pol = *p;
	s->next_id = 1;
}

/* Adds the active time since the last accounting to the minute buckets. */
static void account(struct pd_inv_state *s, uint64_t now)
{
	uint64_t t = s->accounted_mono_ns;

	if (!s->active || now <= t)
		return;
	s->deeper_ns_total += now - t;
	while (t < now) {
		uint64_t minute = t / MINUTE_NS, next = (minute + 1) * MINUTE_NS;
		uint64_t upto = next < now ? next : now;
		size_t b = minute % 60;

		if (s->bucket_minute[b] != minute) {
			s->bucket_minute[b] = minute;
			s->bucket_ns[b] = 0;
		}
		s->bucket_ns[b] += upto - t;
		t = upto;
	}
	s->accounted_mono_ns = now;
}

uint64_t pd_inv_used_ns(struct pd_inv_state *s, uint64_t now)
{
	uint64_t minute = now / MINUTE_NS, sum = 0;

	account(s, now);
	for (size_t b = 0; b < 60; b++)
		if (s->bucket_ns[b] && s->bucket_minute[b] + 60 > minute &&
		    s->bucket_minute[b] <= minute)
			sum += s->bucket_ns[b];
	return sum;
}

double pd_inv_budget_used(struct pd_inv_state *s, uint64_t now)
{
	return (double)pd_inv_used_ns(s, now) / (double)HOUR_NS;
}

void pd_inv_refuse(struct pd_inv_state *s, enum pd_inv_refusal why)
{
	if ((unsigned)why < PD_INV_REFUSED_COUNT)
		s->refused[why]++;
}

bool pd_inv_admit(struct pd_inv_state *s, enum pd_inv_reason reason, uint64_t dur_ns, uint64_t now,
		  enum pd_inv_refusal *why)
{
	if (s->active)
		*why = PD_INV_REFUSED_ACTIVE;
	else if (reason == PD_INV_API)
		return true;
	else if (s->ended_once && now - s->last_end_mono_ns < s->pol.cooldown_ns)
		*why = PD_INV_REFUSED_COOLDOWN;
	else if ((double)(pd_inv_used_ns(s, now) + dur_ns) > s->pol.budget * (double)HOUR_NS)
		*why = PD_INV_REFUSED_BUDGET;
	else
		return true;
	pd_inv_refuse(s, *why);
	return false;
}

uint64_t pd_inv_begin(struct pd_inv_state *s, const struct pd_inv *req, uint64_t dur_ns,
		      uint64_t now, int64_t now_wall, uint64_t cpu_ns)
{
	struct pd_inv *v = &s->cur;

	if (dur_ns > s->pol.max_ns)
		dur_ns = s->pol.max_ns;
	*v = *req;
	v->comm[sizeof(v->comm) - 1] = 0;
	if (v->nr_pids > PD_INV_MAX_PIDS)
		v->nr_pids = PD_INV_MAX_PIDS;
	v->id = s->next_id++;
	v->start_mono_ns = now;
	v->until_mono_ns = now + dur_ns;
	v->start_wall_ns = now_wall;
	v->until_wall_ns = now_wall + (int64_t)dur_ns;
	v->end_mono_ns = 0;
	v->end_wall_ns = 0;
	v->end = PD_INV_END_NONE;
	v->forks = v->forks_other = v->events = v->cpu_ns = 0;
	v->cpu_start_ns = cpu_ns;
	s->active = true;
	s->accounted_mono_ns = now;
	if ((unsigned)v->reason < PD_INV_REASON_COUNT)
		s->started[v->reason]++;
	return v->id;
}

bool pd_inv_due(const struct pd_inv_state *s, uint64_t now)
{
	return s->active && now >= s->cur.until_mono_ns;
}

void pd_inv_progress(struct pd_inv_state *s, uint64_t events, uint64_t cpu_ns, uint64_t now)
{
	if (!s->active)
		return;
	s->cur.events = events;
	if (cpu_ns >= s->cur.cpu_start_ns)
		s->cur.cpu_ns = cpu_ns - s->cur.cpu_start_ns;
	account(s, now);
}

void pd_inv_finish(struct pd_inv_state *s, enum pd_inv_end why, uint64_t now, int64_t now_wall,
		   uint64_t cpu_ns)
{
	if (!s->active)
		return;
	account(s, now);
	if (cpu_ns >= s->cur.cpu_start_ns)
		s->cur.cpu_ns = cpu_ns - s->cur.cpu_start_ns;
	s->cur.end = why;
	s->cur.end_mono_ns = now;
	s->cur.end_wall_ns = now_wall;
	s->hist[s->hist_next] = s->cur;
	s->hist_next = (s->hist_next + 1) % PD_INV_HISTORY;
	if (s->nr_hist < PD_INV_HISTORY)
		s->nr_hist++;
	s->active = false;
	s->ended_once = true;
	s->last_end_mono_ns = now;
}

void pd_inv_counters(struct pd_inv_state *s, uint64_t now, struct pd_inv_counters *out)
{
	account(s, now);
	out->active = s->active;
	memcpy(out->started, s->started, sizeof(out->started));
	memcpy(out->refused, s->refused, sizeof(out->refused));
	out->seconds_total = (double)s->deeper_ns_total / 1e9;
}

/* ------------------------------------------------------------------ JSON */

json_t *pd_inv_json(const struct pd_inv *v, bool active)
{
	json_t *pids = json_array(), *o;

	for (size_t i = 0; pids && i < v->nr_pids; i++)
		json_array_append_new(pids, json_integer(v->pids[i]));
	o = json_pack("{s:I,s:b,s:s,s:s,s:o,s:o,s:o,s:I,s:I,s:o,s:o,s:I,s:I,s:I,s:I}", "id",
		      (json_int_t)v->id, "active", active, "reason", pd_inv_reason_name(v->reason),
		      "detail", pd_detail_name(v->detail), "comm",
		      v->comm[0] ? json_string(v->comm) : json_null(), "pid",
		      v->pid >= 0 ? json_integer(v->pid) : json_null(), "pids",
		      pids ? pids : json_null(), "start_wall_ns", (json_int_t)v->start_wall_ns,
		      "until_wall_ns", (json_int_t)v->until_wall_ns, "end_wall_ns",
		      v->end_wall_ns ? json_integer(v->end_wall_ns) : json_null(), "end",
		      v->end ? json_string(pd_inv_end_name(v->end)) : json_null(), "forks",
		      (json_int_t)v->forks, "forks_other", (json_int_t)v->forks_other, "events",
		      (json_int_t)v->events, "cpu_ns", (json_int_t)v->cpu_ns);
	return o;
}

static json_t *budget_json(struct pd_inv_state *s, uint64_t now)
{
	uint64_t used = pd_inv_used_ns(s, now);

	return json_pack("{s:f,s:f,s:f}", "share", s->pol.budget, "used",
			 (double)used / (double)HOUR_NS, "used_s", (double)used / 1e9);
}

json_t *pd_inv_list_json(struct pd_inv_state *s, uint64_t now)
{
	json_t *recent = json_array();

	for (size_t i = 0; recent && i < s->nr_hist; i++) {
		size_t k = (s->hist_next + PD_INV_HISTORY - 1 - i) % PD_INV_HISTORY;

		json_array_append_new(recent, pd_inv_json(&s->hist[k], false));
	}
	return json_pack("{s:o,s:o,s:o,s:I}", "active",
			 s->active ? pd_inv_json(&s->cur, true) : json_null(), "recent",
			 recent ? recent : json_null(), "budget", budget_json(s, now), "max_s",
			 (json_int_t)(s->pol.max_ns / NS_PER_S));
}

json_t *pd_inv_status_json(struct pd_inv_state *s, uint64_t now)
{
	json_t *o = json_pack("{s:b,s:o}", "active", s->active, "budget", budget_json(s, now));

	if (o && s->active) {
		json_object_set_new(o, "id", json_integer((json_int_t)s->cur.id));
		json_object_set_new(o, "detail", json_string(pd_detail_name(s->cur.detail)));
		json_object_set_new(o, "reason", json_string(pd_inv_reason_name(s->cur.reason)));
		json_object_set_new(o, "until_wall_ns", json_integer(s->cur.until_wall_ns));
		json_object_set_new(o, "remaining_s",
				    json_real(now < s->cur.until_mono_ns
						  ? (double)(s->cur.until_mono_ns - now) / 1e9
						  : 0.0));
		json_object_set_new(o, "forks", json_integer((json_int_t)s->cur.forks));
		json_object_set_new(o, "events", json_integer((json_int_t)s->cur.events));
		json_object_set_new(o, "cpu_ns", json_integer((json_int_t)s->cur.cpu_ns));
	}
	return o;
}

/* -------------------------------------------------------------- /proc scan */

static bool comm_is(int dfd, int pid, const char *comm)
{
	char path[64], buf[PD_INV_COMM_LEN + 2];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%d/comm", pid);
	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return !strcmp(buf, comm);
}

int pd_inv_pids_of_comm(const char *proc, const char *comm, int *pids, size_t max, size_t *nr,
			bool *more)
{
	DIR *d = opendir(proc);
	struct dirent *e;
	unsigned seen = 0;

	*nr = 0;
	*more = false;
	if (!d)
		return -errno;
	while ((e = readdir(d)) && seen++ < PROC_SCAN_MAX) {
		long long pid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (pt_parse_int(e->d_name, 1, 0x7fffffff, &pid) ||
		    !comm_is(dirfd(d), (int)pid, comm))
			continue;
		if (*nr < max)
			pids[(*nr)++] = (int)pid;
		else
			*more = true;
	}
	closedir(d);
	return 0;
}
