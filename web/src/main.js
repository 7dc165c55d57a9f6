// ptescope dashboard. Fed by ptescoped's JSON API (api.js); shows the fork
// latency per phase of the kind chosen (address-space copies by default;
// threads and spawns counted apart), its distribution and its course over time, the busiest
// processes, the slowest and the latest forks, and one fork in detail
// (#/fork/ID: phases, VMAs, PTE passes with their lock holds and breaks);
// a badge beside the status while an investigation runs deeper detail.
// Refreshes every REFRESH_MS while "live" is on and the tab is visible. Sized
// for what the API caps: pages of at most 1000 forks, 100 comms, 10000 points.

import './style.css';
import { get, ApiError, PHASES, METRICS, forkTotalNs } from './api.js';
import { histogramChart, timeseriesChart, passChart, unmount } from './charts.js';
import { DASH, esc, fmtComm, fmtNs, fmtInt, fmtBytes, fmtAge, fmtWall, fmtTraceTs, isNum, sig } from './format.js';

const REFRESH_MS = 5000;
const LATEST_PAGE = 25;
const SLOWEST_SHOWN = 15;
const $ = (id) => document.getElementById(id);

const state = {
	comm: '',
	range: '',
	kind: 'fork', // the API's default: address-space copies

	live: true,
	histMetric: 'fork',
	tsMetric: 'fork',
	cursors: [null], // cursor of each latest-forks page visited; last is the current one
	nextCursor: null,
	timer: null,
	busy: false,
	pending: false,
	detailId: null,
};

const t = (window.__ptescope ??= { charts: {} });
t.refreshes = 0;

// ---------------------------------------------------------------- banner

function banner(kind, html) {
	const b = $('banner');
	if (!kind) {
		b.hidden = true;
		b.className = 'banner';
		b.innerHTML = '';
		return;
	}
	b.hidden = false;
	b.className = `banner ${kind}`;
	b.dataset.kind = kind;
	b.innerHTML = html;
}

function errorHelp(e) {
	if (e instanceof ApiError && e.status === 0)
		return `<p>Is ptescoped running? <code>systemctl status ptescoped</code> or
		<code>journalctl -u ptescoped -n 50</code> on the host, then reload this page.
		It retries every ${REFRESH_MS / 1000} s while "live" is on.</p>`;
	if (e instanceof ApiError && e.status === 503)
		return `<p>The daemon is up but its database is not available right now (busy, or
		still being created). It retries every ${REFRESH_MS / 1000} s.</p>`;
	if (e instanceof ApiError && e.status === 400)
		return '<p>A filter value was refused: check the process name and the range above.</p>';
	return '<p>See <code>journalctl -u ptescoped</code> for the daemon\'s side of it.</p>';
}

// ---------------------------------------------------------------- status

// /api/v1/status: capture {mode, requested, reason, healthy, lost_events, ...}
function captureOf(st) {
	const c = st.capture ?? {};
	return { mode: c.mode ?? null, why: c.reason ?? null, healthy: c.healthy, lost: c.lost_events };
}

function renderStatus(st) {
	const el = $('status');
	if (!st) {
		el.textContent = 'daemon unreachable';
		el.className = 'status bad';
		return;
	}
	const cap = captureOf(st);
	const parts = [];
	if (st.version) parts.push(`ptescoped ${esc(st.version)}`);
	if (st.kernel) parts.push(`kernel ${esc(st.kernel)}`);
	if (cap.mode) parts.push(`capture: <b data-testid="capture-mode">${esc(cap.mode)}</b>`);
	const forks = st.forks_stored;
	if (isNum(forks)) parts.push(`${fmtInt(forks)} forks stored`);
	const dbBytes = st.database?.size_bytes;
	if (isNum(dbBytes)) parts.push(fmtBytes(dbBytes));
	if (isNum(cap.lost) && cap.lost > 0) parts.push(`<span class="warnc">${fmtInt(cap.lost)} events lost</span>`);
	const up = st.uptime_s;
	if (isNum(up)) parts.push(`up ${fmtAge(up)}`);
	el.innerHTML = parts.join(' · ') || 'connected';
	el.title = cap.why ? `capture: ${cap.why}` : '';
	el.className = `status ${cap.healthy === false ? 'warn' : 'ok'}`;
	state.capture = cap;
	renderInvestigation(st.investigation);
}

// /api/v1/status investigation {active, detail, reason, until_wall_ns, remaining_s,
// forks, events, cpu_ns, budget {share, used}}: a badge while one runs, nothing otherwise.
function renderInvestigation(inv) {
	let el = $('investigation');
	if (!el) {
		el = document.createElement('span');
		el.id = 'investigation';
		el.className = 'inv-badge';
		el.dataset.testid = 'investigation';
		$('status').after(el);
	}
	if (!inv?.active) {
		el.hidden = true;
		el.innerHTML = '';
		return;
	}
	const parts = [`investigating: <b data-testid="investigation-detail">${esc(inv.detail)}</b>`];
	if (isNum(inv.until_wall_ns)) parts.push(`until ${esc(fmtWall(inv.until_wall_ns).slice(11))}`);
	if (isNum(inv.remaining_s)) parts.push(`${fmtAge(inv.remaining_s)} left`);
	if (isNum(inv.forks)) parts.push(`${fmtInt(inv.forks)} forks`);
	if (isNum(inv.cpu_ns)) parts.push(`cost ${fmtNs(inv.cpu_ns)} CPU`);
	if (isNum(inv.budget?.used)) parts.push(`${sig(inv.budget.used * 100)}% of the hour deeper`);
	el.innerHTML = parts.join(' · ');
	el.title = `${inv.reason === 'auto' ? 'started automatically after a slow fork' : 'started over the API'}; ` +
		'ends by itself, or: DELETE /api/v1/investigations/current';
	el.hidden = false;
}

// ---------------------------------------------------------------- stats

const STAT_ROWS = [
	['fork', 'fork (outermost traced)'],
	['kernel_clone', 'kernel_clone'],
	['copy_process', 'copy_process'],
	['dup_mmap', 'dup_mmap'],
	['copy_page_range', 'copy_page_range'],
	['max_lock_hold', 'longest PTE lock hold'],
	['pte_pass_hold', 'PTE lock hold per pass'],
];
const QS = ['p50', 'p90', 'p99', 'p999', 'max'];

function nsCell(v, attrs = '') {
	return `<td class="num" ${attrs} data-ns="${isNum(v) ? v : ''}">${fmtNs(v)}</td>`;
}

// Clones of each kind in the range: what the fork figures leave out.
function kindsLine(kinds) {
	const k = kinds?.kinds;
	if (!k) return '';
	return `<p class="hint" data-testid="kinds">In this range: <b data-kind="fork" data-n="${k.fork}">${fmtInt(k.fork)}</b> forks,
		<span data-kind="thread" data-n="${k.thread}">${fmtInt(k.thread)}</span> threads,
		<span data-kind="spawn" data-n="${k.spawn}">${fmtInt(k.spawn)}</span> spawns,
		<span data-kind="unknown" data-n="${k.unknown}">${fmtInt(k.unknown)}</span> of unknown kind.
		Figures are over ${state.kind === 'fork' ? 'forks only' : state.kind === 'all' ? 'every clone' : `${esc(state.kind)}s`}${state.kind === 'fork' ? '' : '; time series and the busiest processes hold forks only'}.</p>`;
}

function renderStats(stats, kinds) {
	const m = stats.metrics ?? {};
	let h = '<thead><tr><th>phase</th><th class="num">values</th>' +
		QS.map((q) => `<th class="num">${q === 'p999' ? 'p99.9' : q}</th>`).join('') + '</tr></thead><tbody>';
	for (const [key, label] of STAT_ROWS) {
		const s = m[key];
		if (!s) continue;
		const n = s.count - (s.nulls ?? 0);
		h += `<tr data-metric="${key}"${n > 0 ? '' : ' class="none"'}><th>${esc(label)}</th>` +
			`<td class="num" data-q="count" data-n="${n}">${fmtInt(n)}</td>` +
			QS.map((q) => nsCell(s[`${q}_ns`], `data-q="${q}"`)).join('') + '</tr>';
	}
	$('stats').innerHTML = `${h}</tbody>`;
	const c = stats.cost ?? {};
	$('costs').innerHTML = `
		<div class="kpi"><span class="k">forks in range</span><span class="v" data-testid="kpi-forks" data-n="${stats.forks ?? ''}">${fmtInt(stats.forks)}</span></div>
		<div class="kpi"><span class="k">per PTE copied</span><span class="v" data-testid="kpi-ns-per-pte" data-v="${c.ns_per_pte ?? ''}">${isNum(c.ns_per_pte) ? `${sig(c.ns_per_pte)} ns` : DASH}</span></div>
		<div class="kpi"><span class="k">per GiB mapped</span><span class="v" data-testid="kpi-ms-per-gib" data-v="${c.ms_per_gib ?? ''}">${isNum(c.ms_per_gib) ? `${sig(c.ms_per_gib)} ms` : DASH}</span></div>
		<p class="hint">copy_page_range time over PTEs copied, over ${fmtInt(c.forks)} forks;
		per GiB assumes 4 KiB pages all present.</p>${kindsLine(kinds)}`;
}

// ---------------------------------------------------------------- charts

function chartEmpty(el, name, msg) {
	unmount(el, name);
	el.innerHTML = `<p class="empty" data-testid="${name}-empty">${msg}</p>`;
}

function renderHistogram(h) {
	const el = $('hist');
	const label = METRICS.find(([k]) => k === h.metric)?.[1] ?? h.metric;
	if (!h.bins?.length) {
		chartEmpty(el, 'histogram', `No ${esc(label)} values in this range: the traces stored did not carry this phase, or no fork matched.`);
		return;
	}
	histogramChart(el, h.bins, h.metric);
	let note = el.querySelector('.note');
	if (!note) {
		note = document.createElement('p');
		note.className = 'note hint';
		el.append(note);
	}
	note.textContent = `${fmtInt(h.values)} values from the complete forks among ${fmtInt(h.forks)}` +
		' in range; buckets are log-scale.';
}

function renderTimeseries(ts) {
	const el = $('ts');
	if (!ts.points?.length) {
		chartEmpty(el, 'timeseries', 'Nothing over time in this range yet.');
		return;
	}
	timeseriesChart(el, ts.points, ts.metric);
	let note = el.querySelector('.note');
	if (!note) {
		note = document.createElement('p');
		note.className = 'note hint';
		el.append(note);
	}
	note.textContent = `one point per ${ts.step_s >= 86400 ? 'day' : ts.step_s >= 3600 ? 'hour' : 'minute'} (when forks were stored)` +
		(ts.truncated ? '; only the first points are shown: narrow the range' : '');
}

// ---------------------------------------------------------------- tables

function renderTop(top) {
	const rows = top.comms ?? [];
	if (!rows.length) {
		$('top').innerHTML = '<tbody><tr><td class="empty">No process has forked in this range.</td></tr></tbody>';
		return;
	}
	$('top').innerHTML = '<thead><tr><th>process (parent comm)</th><th class="num">forks</th><th class="num">p99</th></tr></thead><tbody>' +
		rows.map((r) => `<tr data-comm="${esc(r.comm)}"><td><a href="#" class="comm-link" data-comm="${esc(r.comm)}">${esc(fmtComm(r.comm))}</a></td>` +
			`<td class="num" data-n="${r.forks}">${fmtInt(r.forks)}</td>${nsCell(r.p99_ns)}</tr>`).join('') +
		'</tbody>';
}

const VERDICT = { fires: 'advice', quiet: 'does not apply', cannot_judge: 'cannot judge' };

// One process of GET /api/v1/doctor: what dominates, the evidence, and the advice of the rules that fire.
function doctorProc(p) {
	const shares = Object.entries(p.time_shares ?? {}).filter(([, v]) => isNum(v))
		.map(([k, v]) => `${esc(k.replace(/_/g, ' '))} ${sig(v * 100)}%`).join(', ');
	const fires = p.findings.filter((f) => f.verdict === 'fires');
	const rest = p.findings.filter((f) => f.verdict !== 'fires');
	return `<div class="doc-proc" data-testid="doctor-proc" data-comm="${esc(p.comm)}" data-pid="${p.pid ?? ''}">
		<h3>${esc(fmtComm(p.comm))} <span class="dim">pid ${p.pid ?? '?'}</span>:
		${fmtInt(p.forks)} forks, p50 ${fmtNs(p.p50_ns)}, max ${fmtNs(p.max_ns)};
		slowest ${p.slowest_forks.map((id) => `<a href="#/fork/${id}" class="doc-fork" data-id="${id}">${id}</a>`).join(' ')}</h3>
		<p class="hint">Time: ${shares || 'unknown (no phase above copy_page_range traced)'}${p.dominant ? `; dominant: <b data-k="dominant">${esc(p.dominant.replace(/_/g, ' '))}</b>` : ''}</p>
		${fires.map((f) => `<div class="finding fires" data-rule="${esc(f.rule)}" data-verdict="fires"><b>${esc(f.rule)}</b>: ${esc(f.evidence)}<p class="advice">${esc(f.advice)}</p></div>`).join('')}
		${fires.length ? '' : '<p class="hint" data-testid="doctor-no-advice">No advice: no rule fired on this evidence.</p>'}
		<ul class="findings">${rest.map((f) => `<li data-rule="${esc(f.rule)}" data-verdict="${f.verdict}"><span class="dim">${VERDICT[f.verdict]}</span> ${esc(f.rule)}: ${esc(f.evidence)}</li>`).join('')}</ul>
	</div>`;
}

function renderDoctor(doc) {
	const el = $('doctor');
	if (doc.error) {
		el.innerHTML = `<p class="empty">The doctor could not run: ${esc(doc.error)}</p>`;
		return;
	}
	const procs = doc.slow_processes ?? [];
	el.innerHTML = procs.length
		? procs.map(doctorProc).join('') + (doc.truncated ? '<p class="hint">Only the newest 100000 forks of the range were examined.</p>' : '')
		: `<p class="empty" data-testid="doctor-empty">No process has a fork of ${fmtNs(doc.slow_ns)} or more in this range.</p>`;
}

const FORK_HEAD = '<thead><tr><th>id</th><th>parent</th><th class="num">child</th><th class="num">total</th>' +
	'<th class="num">copy_page_range</th><th class="num">VMAs</th><th class="num">passes</th>' +
	'<th class="num">lock breaks</th><th class="num">PTEs</th><th class="num">max hold</th>' +
	'<th class="num" title="times preempted while copying page tables">preempted</th>' +
	'<th class="num" title="time off the CPU while copying page tables">off CPU</th><th>when</th><th>flags</th>' +
	'<th title="fork: the address space was copied; thread; spawn (vfork, posix_spawn)">kind</th>' +
	'<th title="the parent\'s systemd unit or container (its cgroup when it has neither)">from</th></tr></thead>';

// Where a fork came from, short: its container, else its systemd unit, else its cgroup.
function originOf(f) {
	if (f.container_id) return `container ${f.container_id.slice(0, 12)}`;
	return f.systemd_unit ?? f.cgroup ?? null;
}

function forkRow(f) {
	const flags = (f.flags ?? []).map((x) => `<span class="flag">${esc(x)}</span>`).join(' ');
	return `<tr class="fork" data-id="${f.id}" tabindex="0">` +
		`<td><a href="#/fork/${f.id}">${f.id}</a></td>` +
		`<td>${esc(fmtComm(f.parent_comm))} <span class="dim">${f.parent_pid ?? ''}</span></td>` +
		`<td class="num">${f.child_pid ?? DASH}</td>` +
		nsCell(forkTotalNs(f), 'data-k="total"') +
		nsCell(f.copy_page_range_ns, 'data-k="copy_page_range_ns"') +
		`<td class="num">${fmtInt(f.vmas)}</td><td class="num">${fmtInt(f.pte_passes)}</td>` +
		`<td class="num${f.lock_breaks > 0 ? ' hot' : ''}">${fmtInt(f.lock_breaks)}</td>` +
		`<td class="num">${fmtInt(f.ptes)}</td>` +
		nsCell(f.max_lock_hold_ns, 'data-k="max_lock_hold_ns"') +
		`<td class="num${f.copy_resched > 0 ? ' hot' : ''}" data-k="copy_resched">${fmtInt(f.copy_resched)}</td>` +
		nsCell(f.copy_offcpu_ns, 'data-k="copy_offcpu_ns"') +
		`<td class="dim" title="trace clock ${fmtTraceTs(f.ts_ns)}">${fmtWall(f.wall_ns)}</td>` +
		`<td>${f.complete ? '' : '<span class="flag">incomplete</span> '}${flags}</td>` +
		`<td data-k="kind">${esc(f.kind ?? 'unknown')}</td>` +
		`<td class="dim" data-k="origin" title="${esc(f.cgroup ?? '')}">${esc(originOf(f) ?? DASH)}</td></tr>`;
}

function renderForks(el, forks, emptyMsg) {
	el.innerHTML = forks.length
		? FORK_HEAD + '<tbody>' + forks.map(forkRow).join('') + '</tbody>'
		: `<tbody><tr><td class="empty">${emptyMsg}</td></tr></tbody>`;
}

// ---------------------------------------------------------------- refresh

function rangeParams() {
	const p = {};
	if (state.range) p.since = state.range;
	return p;
}

function commParams() {
	return state.comm ? { comm: state.comm } : {};
}

// The kind filter; time series and the top list hold forks only (the API's rollups).
function kindParams() {
	return state.kind === 'fork' ? {} : { kind: state.kind };
}

const EMPTY_TS = { points: [], truncated: false };
const EMPTY_TOP = { comms: [] };

async function loadTimeseries() {
	const base = { ...rangeParams(), ...commParams(), metric: state.tsMetric };
	// minute steps over short ranges; hours when minutes would be cut short
	const step = state.range === '-7d' ? 3600 : 60;
	let ts = await get('api/v1/timeseries', { ...base, step, limit: 10000 });
	if (ts.truncated && step === 60) ts = await get('api/v1/timeseries', { ...base, step: 3600, limit: 10000 });
	return ts;
}

// The slowest forks: those at or above the p99 of the range (from /stats),
// sorted by total time. Exact for the top of the distribution as long as
// fewer than 1000 forks pass the threshold (one page).
async function loadSlowest(stats) {
	const p99 = stats.metrics?.fork?.p99_ns;
	const minUs = isNum(p99) ? Math.floor(p99 / 1000 / 1.01) : 0; // rollup p99 is within 1%
	const r = await get('api/v1/forks', { ...rangeParams(), ...commParams(), ...kindParams(), min_us: minUs || undefined, limit: 1000 });
	const forks = (r.forks ?? []).filter((f) => isNum(forkTotalNs(f)));
	forks.sort((a, b) => forkTotalNs(b) - forkTotalNs(a) || b.id - a.id);
	return { forks: forks.slice(0, SLOWEST_SHOWN), minUs, more: r.next_cursor != null };
}

async function refresh() {
	if (state.busy) {
		state.pending = true;
		return;
	}
	state.busy = true;
	const started = performance.now();
	try {
		const statusP = get('api/v1/status').catch((e) => e);
		const forksOnly = state.kind === 'fork';
		const [stats, hist, top, ts, latest, kinds] = await Promise.all([
			get('api/v1/stats', { ...rangeParams(), ...commParams(), ...kindParams() }),
			get('api/v1/histogram', { ...rangeParams(), ...commParams(), ...kindParams(), metric: state.histMetric }),
			forksOnly ? get('api/v1/top', { ...rangeParams(), limit: 10 }) : EMPTY_TOP,
			forksOnly ? loadTimeseries() : EMPTY_TS,
			get('api/v1/forks', { ...rangeParams(), ...commParams(), ...kindParams(), limit: LATEST_PAGE, cursor: state.cursors.at(-1) ?? undefined }),
			get('api/v1/kinds', { ...rangeParams(), ...commParams() }).catch(() => null),
		]);
		const doctor = await get('api/v1/doctor', { ...rangeParams(), ...commParams(), ...kindParams() }).catch((e) => ({ error: e.message }));
		const slow = await loadSlowest(stats);
		const st = await statusP;
		renderStatus(st instanceof Error ? null : st);
		renderStats(stats, kinds);
		renderHistogram(hist);
		renderTimeseries(ts);
		renderTop(top);
		renderDoctor(doctor);
		renderForks($('slow'), slow.forks, 'No forks with a known duration in this range.');
		$('slow-hint').textContent = slow.forks.length
			? `At or above the p99 of the range (${fmtNs(slow.minUs * 1000)}), longest first${slow.more ? '; the newest 1000 of them searched' : ''}.`
			: '';
		renderForks($('latest'), latest.forks ?? [], 'No forks in this range.');
		state.nextCursor = latest.next_cursor ?? null;
		$('latest-older').disabled = state.nextCursor == null;
		$('latest-newer').disabled = state.cursors.length <= 1;
		if (!stats.forks) showEmpty();
		else banner(null);
		t.refreshes++;
		t.last = { stats, hist, top, ts, latest, slow, doctor, status: st instanceof Error ? null : st, ms: performance.now() - started };
		document.body.dataset.state = stats.forks ? 'ready' : 'empty';
	} catch (e) {
		console.warn('ptescope: refresh failed:', e.message);
		if (e instanceof ApiError && e.status === 0) renderStatus(null);
		banner('error', `<b>Could not load the data.</b> ${esc(e.message)}${errorHelp(e)}`);
		document.body.dataset.state = 'error';
		t.lastError = e.message;
	} finally {
		state.busy = false;
		schedule();
		if (state.pending) {
			state.pending = false;
			refresh();
		}
	}
}

function showEmpty() {
	const filtered = state.comm || state.range;
	const mode = state.capture?.mode;
	let what;
	if (filtered)
		what = '<p>Nothing matches the filters above: clear the process name or widen the range.</p>';
	else
		what = `<p>Live capture is <b>${esc(mode ?? 'unknown')}</b>${state.capture?.why ? ` (${esc(state.capture.why)})` : ''}.
		${mode && mode !== 'off' ? 'Forks show up here as processes fork: try <code>bash -c true</code> on the host.' :
			'Start ptescoped with <code>--capture auto</code> (as root) to record live forks.'}</p>
		<p>Or replay a recording: <code>ptescoped --replay trace.dat</code>, or
		<code>curl -H "Authorization: Bearer $(cat TOKEN_FILE)" --data-binary @trace.dat
		'${esc(location.origin)}/api/v1/replays?name=trace.dat'</code>. Record one with
		<code>trace-cmd record -p function_graph -g kernel_clone ...</code> (see the README).</p>`;
	banner('empty', `<b>No forks stored yet${filtered ? ' for these filters' : ''}.</b>${what}`);
}

function schedule() {
	clearTimeout(state.timer);
	state.timer = null;
	if (state.live && !document.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

// ---------------------------------------------------------------- detail

function kv(label, value, attrs = '') {
	return `<div class="kv" ${attrs}><span class="k">${label}</span><span class="v">${value}</span></div>`;
}

const pct = (x) => (isNum(x) ? `${sig(x * 100)} %` : DASH);

// The parent's memory (live forks only) and the cost model, both as the API computed them.
function costBlock(f) {
	const m = f.parent_mem;
	const c = f.cost ?? {};
	const rss = m && isNum(m.rss_anon_bytes) && isNum(m.rss_file_bytes) && isNum(m.rss_shmem_bytes)
		? m.rss_anon_bytes + m.rss_file_bytes + m.rss_shmem_bytes : null;
	const mem = m
		? `${kv('parent RSS', fmtBytes(rss), `data-k="rss" data-n="${rss ?? ''}"`)}
			${kv('anon / file / shmem', `${fmtBytes(m.rss_anon_bytes)} / ${fmtBytes(m.rss_file_bytes)} / ${fmtBytes(m.rss_shmem_bytes)}`)}
			${kv('parent page tables', fmtBytes(m.pte_bytes), `data-k="pte_bytes" data-n="${m.pte_bytes ?? ''}"`)}
			${kv('parent VMAs', fmtInt(m.map_count), `data-k="map_count" data-n="${m.map_count ?? ''}"`)}
			${kv('THP in use', fmtBytes(m.anon_huge_bytes), `data-k="anon_huge_bytes" data-n="${m.anon_huge_bytes ?? ''}"`)}
			${kv('child exec\'d', m.child_exec === null ? DASH : m.child_exec ? 'yes' : 'no', 'data-k="child_exec"')}`
		: '<p class="hint" data-testid="mem-none">The parent\'s memory was not read for this fork: only the live daemon reads it (from /proc, when the fork is seen), never a replay.</p>';
	return `<h3>Memory and cost</h3>${m ? '' : mem}
		<div class="kvs" data-testid="cost-kv">
			${m ? mem : ''}
			${kv('ms per GiB of RSS', isNum(c.ms_per_gib_rss) ? sig(c.ms_per_gib_rss) : DASH, `data-k="ms_per_gib_rss" data-n="${c.ms_per_gib_rss ?? ''}"`)}
			${kv('fork rate', isNum(c.gb_per_s) ? `${sig(c.gb_per_s)} GB/s (${esc(c.fork_rate_band)})` : DASH, `data-k="gb_per_s" data-n="${c.gb_per_s ?? ''}"`)}
			${kv('ns per PTE', isNum(c.ns_per_pte) ? sig(c.ns_per_pte) : DASH, `data-k="ns_per_pte" data-n="${c.ns_per_pte ?? ''}"`)}
			${kv('PTE bytes copied', fmtBytes(c.pte_bytes), `data-k="cost_pte_bytes" data-n="${c.pte_bytes ?? ''}"`)}
			${kv('copying page tables', pct(c.copy_share), `data-k="copy_share" data-n="${c.copy_share ?? ''}"`)}
			${kv('scheduled out', pct(c.offcpu_share), `data-k="offcpu_share" data-n="${c.offcpu_share ?? ''}"`)}
		</div>`;
}

function waterfall(f, vmas) {
	const total = forkTotalNs(f);
	if (!isNum(total) || total <= 0) return '<p class="empty">The trace carried no phase times for this fork.</p>';
	let h = '<div class="wf" data-testid="waterfall">';
	PHASES.forEach((p, depth) => {
		const v = f[`${p}_ns`];
		const w = isNum(v) ? Math.max(0.3, (100 * v) / total) : 0;
		h += `<div class="wf-row" data-phase="${p}" data-ns="${isNum(v) ? v : ''}">` +
			`<span class="wf-label" style="padding-left:${depth * 0.8}em">${p}</span>` +
			`<span class="wf-track">${isNum(v) ? `<span class="wf-bar d${depth}" style="width:${w}%"></span>` : '<span class="wf-null">not traced</span>'}</span>` +
			`<span class="wf-val">${fmtNs(v)}</span></div>`;
	});
	// VMAs on their own clock: offsets from the first VMA's start, when known
	const starts = vmas.map((v) => v.start_ns).filter(isNum);
	const t0 = starts.length ? Math.min(...starts) : null;
	const span = Math.max(f.copy_page_range_ns ?? 0, ...vmas.map((v) => (isNum(v.start_ns) && isNum(v.dur_ns) ? v.start_ns - t0 + v.dur_ns : 0)));
	if (vmas.length && span > 0) {
		h += '<div class="wf-sub">copy_page_range, one bar per VMA copied (offset from the first):</div>';
		vmas.forEach((v, i) => {
			const left = isNum(v.start_ns) && t0 !== null ? (100 * (v.start_ns - t0)) / span : 0;
			const w = isNum(v.dur_ns) ? Math.max(0.3, (100 * v.dur_ns) / span) : 0;
			h += `<div class="wf-row vma" data-vma="${i}" data-ns="${v.dur_ns ?? ''}">` +
				`<span class="wf-label">VMA ${i}${v.huge ? ' (huge)' : ''}</span>` +
				`<span class="wf-track">${w ? `<span class="wf-bar vma" style="margin-left:${left}%;width:${w}%"></span>` : '<span class="wf-null">cut by the trace</span>'}</span>` +
				`<span class="wf-val">${fmtNs(v.dur_ns)} · ${fmtInt(v.passes)} passes · ${v.ptes == null ? DASH : fmtInt(v.ptes)} PTEs</span></div>`;
		});
	}
	return `${h}</div>`;
}

async function showDetail(id) {
	const d = $('detail');
	state.detailId = id;
	d.hidden = false;
	d.innerHTML = `<div class="detail-inner"><p>loading fork ${esc(id)}…</p></div>`;
	let f;
	try {
		f = await get(`api/v1/forks/${encodeURIComponent(id)}`);
	} catch (e) {
		if (state.detailId !== id) return;
		d.innerHTML = `<div class="detail-inner"><a class="close" href="#/">close ✕</a><div class="banner error" data-kind="error">
			<b>Fork ${esc(id)} could not be loaded.</b> ${esc(e.message)}
			${e.status === 404 ? '<p>It may have been deleted by retention; pick another one in the tables.</p>' : errorHelp(e)}</div></div>`;
		return;
	}
	if (state.detailId !== id) return;
	t.detail = f;
	const det = f.detail ?? { vmas: [], passes: [] };
	const passes = det.passes ?? [];
	const vmas = det.vmas ?? [];
	const breaks = passes.filter((p) => p.resumed).length;
	const flags = (f.flags ?? []).map((x) => `<span class="flag">${esc(x)}</span>`).join(' ');
	d.innerHTML = `<div class="detail-inner">
		<a class="close" href="#/" title="back to the dashboard (Esc)">close ✕</a>
		<h2>Fork ${f.id}: ${esc(fmtComm(f.parent_comm))} (${f.parent_pid ?? '?'}) → ${f.child_pid ?? '?'}${f.child_comm ? ` ${esc(fmtComm(f.child_comm))}` : ''}</h2>
		<div class="kvs" data-testid="detail-kv">
			${kv('total', fmtNs(forkTotalNs(f)), `data-k="total" data-ns="${forkTotalNs(f) ?? ''}"`)}
			${kv('VMAs', fmtInt(f.vmas), `data-k="vmas" data-n="${f.vmas ?? ''}"`)}
			${kv('PTE passes', fmtInt(f.pte_passes), `data-k="pte_passes" data-n="${f.pte_passes ?? ''}"`)}
			${kv('lock breaks', fmtInt(f.lock_breaks), `data-k="lock_breaks" data-n="${f.lock_breaks ?? ''}"`)}
			${kv('PTEs', fmtInt(f.ptes), `data-k="ptes" data-n="${f.ptes ?? ''}"`)}
			${kv('longest lock hold', fmtNs(f.max_lock_hold_ns), `data-k="max_lock_hold_ns" data-ns="${f.max_lock_hold_ns ?? ''}"`)}
			${kv('preempted while copying', fmtInt(f.copy_resched), `data-k="copy_resched" data-n="${f.copy_resched ?? ''}"`)}
			${kv('off CPU while copying', fmtNs(f.copy_offcpu_ns), `data-k="copy_offcpu_ns" data-ns="${f.copy_offcpu_ns ?? ''}"`)}
			${kv('kind', esc(f.kind ?? 'unknown'), `data-k="kind"`)}
			${kv('clone flags', f.clone_flags != null ? `0x${f.clone_flags.toString(16)}` : DASH, `data-k="clone_flags"`)}
			${kv('cgroup', esc(f.cgroup ?? DASH), `data-k="cgroup"`)}
			${kv('systemd unit', esc(f.systemd_unit ?? DASH), `data-k="systemd_unit"`)}
			${kv('container', esc(f.container_id ?? DASH), `data-k="container_id"`)}
			${kv('stored', fmtWall(f.wall_ns))}
			${kv('trace time', fmtTraceTs(f.ts_ns))}
			${kv('status', f.complete ? 'complete' : `<span class="flag">incomplete</span> ${flags}`)}
		</div>
		${costBlock(f)}
		<h3>Phases</h3>
		${waterfall(f, vmas)}
		<h3>PTE passes <span class="dim">(${fmtInt(passes.length)} passes, ${fmtInt(breaks)} after a lock break)</span></h3>
		<p class="hint">Each pass takes the parent's and the child's PTE locks, copies PTEs and drops the locks.
		copy_pte_range drops them early when <code>need_resched()</code> or <code>spin_needbreak()</code>
		says so (checked every 32 units of <code>progress</code>): the pass that resumes the same page table
		after such a break is marked red.</p>
		<div class="chart" id="passes" data-testid="passes-chart"></div>
		${det.truncated ? '<p class="hint">Only the first 100000 VMAs/passes are shown.</p>' : ''}
	</div>`;
	const pc = $('passes');
	if (!passes.length)
		pc.innerHTML = `<p class="empty" data-testid="passes-empty">No per-pass detail stored for this fork:
			${f.pte_passes ? 'the daemon keeps it only for forks slower than --slow-fork-us, or at --detail section/pte.' : 'the trace did not carry the PTE locks.'}</p>`;
	else passChart(pc, passes);
}

function hideDetail() {
	state.detailId = null;
	const d = $('detail');
	const pc = $('passes');
	if (pc) unmount(pc, 'passes');
	d.hidden = true;
	d.innerHTML = '';
}

function route() {
	const m = location.hash.match(/^#\/fork\/(\d+)$/);
	if (m) showDetail(m[1]);
	else hideDetail();
}

// ---------------------------------------------------------------- wiring

function restart() {
	state.cursors = [null];
	refresh();
}

function init() {
	for (const sel of ['hist-metric', 'ts-metric'])
		$(sel).innerHTML = METRICS
			.filter(([k]) => sel === 'ts-metric' || k !== 'pte_pass_hold')
			.map(([k, label]) => `<option value="${k}">${esc(label)}</option>`).join('');
	$('hist-metric').addEventListener('change', (e) => { state.histMetric = e.target.value; refresh(); });
	$('ts-metric').addEventListener('change', (e) => { state.tsMetric = e.target.value; refresh(); });
	let commTimer;
	$('f-comm').addEventListener('input', (e) => {
		clearTimeout(commTimer);
		commTimer = setTimeout(() => { state.comm = e.target.value.trim(); restart(); }, 400);
	});
	$('filters').addEventListener('submit', (e) => { e.preventDefault(); state.comm = $('f-comm').value.trim(); restart(); });
	$('f-range').addEventListener('change', (e) => { state.range = e.target.value; restart(); });
	$('f-kind').addEventListener('change', (e) => { state.kind = e.target.value; restart(); });
	$('f-live').addEventListener('change', (e) => { state.live = e.target.checked; if (state.live) refresh(); else schedule(); });
	$('f-refresh').addEventListener('click', () => refresh());
	$('latest-older').addEventListener('click', () => {
		if (state.nextCursor != null) { state.cursors.push(state.nextCursor); refresh(); }
	});
	$('latest-newer').addEventListener('click', () => { state.cursors = [null]; refresh(); });
	document.addEventListener('click', (e) => {
		const a = e.target.closest('.comm-link');
		if (a) {
			e.preventDefault();
			if (!a.dataset.comm) return; // "comm=" is not a filter the API takes
			$('f-comm').value = a.dataset.comm;
			state.comm = a.dataset.comm;
			restart();
			return;
		}
		const row = e.target.closest('tr.fork');
		if (row && !e.target.closest('a')) location.hash = `#/fork/${row.dataset.id}`;
	});
	document.addEventListener('keydown', (e) => {
		if (e.key === 'Escape' && state.detailId) location.hash = '#/';
		const row = e.target.closest?.('tr.fork');
		if (row && e.key === 'Enter') location.hash = `#/fork/${row.dataset.id}`;
	});
	document.addEventListener('visibilitychange', () => (document.hidden ? schedule() : refresh()));
	window.addEventListener('hashchange', route);
	route();
	refresh();
}

init();
