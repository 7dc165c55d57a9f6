// Browser test of the dashboard (ctest label "web"): starts ptescoped (or,
// until it exists, tests/http's http_driver over a database filled by
// `ptescope replay --db`) on loopback with a real recording replayed and the
// built dashboard as its web root, drives Debian's Chromium through
// playwright-core, and checks that the page shows the numbers the API
// returns: the stats table, the cost per PTE, the histogram and time-series
// data handed to uPlot (and that their canvases were drawn on), the top
// processes, the slowest and the latest forks, one fork's drill-down (its
// fields, VMAs and per-pass PTEs, lock holds and lock breaks), filters, the
// empty and error states, and a live refresh after a replay is uploaded.
// No console errors are allowed outside the error-state step. Screenshots go
// to $ARTIFACTS. Exits 77 (skip) when Chromium, node_modules or the
// dashboard build are missing.
//
// Environment: WEB_ROOT (built dashboard), NODE_MODULES, FIXTURES, ARTIFACTS,
// PTESCOPED or HTTP_DRIVER + PTESCOPE, CHROMIUM (default /usr/bin/chromium).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const SKIP = 77;
const chromium = env.CHROMIUM || '/usr/bin/chromium';
const fixtures = env.FIXTURES;
const artifacts = env.ARTIFACTS || join(tmpdir(), 'ptescope-web-artifacts');
const recording = join(fixtures ?? '', 'forker-200mb-graph.dat');
const second = join(fixtures ?? '', 'forker-64mb-graph-partial.txt');

function skip(why) {
	console.log(`SKIP: ${why}`);
	process.exit(SKIP);
}

if (!existsSync(chromium)) skip(`no Chromium at ${chromium} (apt-get install chromium; scripts/test does)`);
if (!env.WEB_ROOT || !existsSync(join(env.WEB_ROOT, 'index.html')))
	skip(`dashboard not built (${env.WEB_ROOT}/index.html missing: needs node and npm at build time)`);
const pwPath = join(env.NODE_MODULES ?? '', 'playwright-core', 'index.mjs');
if (!existsSync(pwPath)) skip(`playwright-core not installed (${pwPath})`);
if (!env.PTESCOPED && !(env.HTTP_DRIVER && env.PTESCOPE)) skip('neither ptescoped nor tests/http/http_driver was built');
if (!existsSync(recording)) skip(`no recording at ${recording}`);
const { chromium: pwChromium } = await import(pathToFileURL(pwPath).href);

// ---------------------------------------------------------------- checks

let failures = 0;
function check(ok, what, detail = '') {
	if (ok) {
		console.log(`ok   ${what}`);
	} else {
		failures++;
		console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
	}
}
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// "102 ms" -> 1.02e8: parses what the page shows, independently of its code.
function parseNs(text) {
	const m = /^(-?[\d.,]+)\s*(ns|µs|us|ms|s)$/.exec(text.trim());
	if (!m) return null;
	return Number(m[1].replace(/,/g, '')) * { ns: 1, µs: 1e3, us: 1e3, ms: 1e6, s: 1e9 }[m[2]];
}
function near(shown, value, rel = 0.006) {
	if (value === null || value === undefined) return shown === '—';
	const v = parseNs(shown);
	return v !== null && Math.abs(v - value) <= Math.max(1, Math.abs(value) * rel);
}
const intText = (s) => Number(String(s).replace(/,/g, ''));
const totalNs = (f) => f.kernel_clone_ns ?? f.copy_process_ns ?? f.dup_mmap_ns ?? f.copy_page_range_ns ?? null;

// ---------------------------------------------------------------- server

function freePort() {
	return new Promise((resolve, reject) => {
		const s = createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

const scratch = mkdtempSync(join(tmpdir(), 'ptescope-web-'));
const db = join(scratch, 'ptescope.db');
const token = 'web-test-token-0123456789';
writeFileSync(join(scratch, 'token'), `${token}\n`, { mode: 0o600 });
mkdirSync(artifacts, { recursive: true });
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let server;
let serverLog = '';

function startServer() {
	let cmd;
	let args;
	if (env.PTESCOPED) {
		cmd = env.PTESCOPED;
		args = ['--db', db, '--listen', `127.0.0.1:${port}`, '--capture', 'off', '--replay', recording,
			'--web-root', env.WEB_ROOT, '--token-file', join(scratch, 'token'),
			'--state-file', join(scratch, 'tracefs-state'), '--log-level', 'info'];
	} else {
		execFileSync(env.PTESCOPE, ['replay', '--db', db, recording], { stdio: ['ignore', 'ignore', 'inherit'] });
		cmd = env.HTTP_DRIVER;
		args = ['--db', db, '--listen', `127.0.0.1:${port}`, '--web-root', env.WEB_ROOT,
			'--token-file', join(scratch, 'token'), '--ptescope', env.PTESCOPE];
	}
	console.log(`serving with: ${cmd} ${args.join(' ')}`);
	server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, TMPDIR: scratch } });
	server.stdout.on('data', (d) => (serverLog += d));
	server.stderr.on('data', (d) => (serverLog += d));
	server.on('exit', (code, sig) => (serverLog += `\n[server exited: ${code ?? sig}]\n`));
}

async function api(path) {
	const r = await fetch(base + path);
	if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
	return r.json();
}

async function waitFor(what, fn, ms = 30000) {
	const end = Date.now() + ms;
	let last;
	while (Date.now() < end) {
		try {
			if ((last = await fn())) return last;
		} catch (e) {
			last = e;
		}
		await new Promise((r) => setTimeout(r, 200));
	}
	throw new Error(`timed out waiting for ${what} (${last?.message ?? last})`);
}

let browser;
async function cleanup() {
	if (browser) await browser.close().catch(() => {});
	if (server && server.exitCode === null) {
		server.kill('SIGTERM');
		await new Promise((r) => {
			const t = setTimeout(() => { server.kill('SIGKILL'); r(); }, 10000);
			server.on('exit', () => { clearTimeout(t); r(); });
		});
	}
	rmSync(scratch, { recursive: true, force: true });
}

// ---------------------------------------------------------------- the test

async function run() {
	startServer();
	await waitFor('the API', async () => (await api('/healthz')) && true);
	// the recording holds 8 forks (all complete)
	await waitFor('the replayed forks', async () => (await api('/api/v1/stats')).forks >= 8, 60000);

	browser = await pwChromium.launch({
		executablePath: chromium,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
	const page = await context.newPage();
	const consoleErrors = [];
	let expectErrors = false;
	page.on('console', (m) => { if (m.type() === 'error' && !expectErrors) consoleErrors.push(m.text()); });
	page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
	page.on('requestfailed', (r) => { if (!expectErrors) consoleErrors.push(`request failed: ${r.url()}`); });
	page.on('response', (r) => { if (r.status() >= 400 && !expectErrors) consoleErrors.push(`HTTP ${r.status()}: ${r.url()}`); });

	await page.goto(`${base}/`);
	await page.waitForSelector('body[data-state="ready"]', { timeout: 20000 });

	// --- what the API says, fetched independently of the page
	const stats = await api('/api/v1/stats');
	const hist = await api('/api/v1/histogram?metric=fork');
	const top = await api('/api/v1/top?limit=10');
	const ts = await api('/api/v1/timeseries?metric=fork&step=60&limit=10000');
	const latest = await api('/api/v1/forks?limit=25');
	const all = (await api('/api/v1/forks?limit=1000')).forks;
	const status = await api('/api/v1/status');

	// --- status line
	const statusText = await page.textContent('[data-testid="status"]');
	check(statusText.includes(status.capture?.mode ?? '@@'), 'status shows the capture mode', statusText);
	check(statusText.includes(`${status.forks_stored ?? '@@'} forks stored`), 'status shows the forks stored', statusText);

	// --- stats table: every cell against /api/v1/stats
	const cells = await page.$$eval('#stats tbody tr', (rows) => rows.map((r) => ({
		metric: r.dataset.metric,
		cells: [...r.querySelectorAll('td')].map((td) => ({ q: td.dataset.q, ns: td.dataset.ns, n: td.dataset.n, text: td.textContent })),
	})));
	check(cells.length === Object.keys(stats.metrics).length, 'stats table has one row per metric', `${cells.length} rows`);
	let statBad = [];
	for (const row of cells) {
		const s = stats.metrics[row.metric];
		if (!s) { statBad.push(`unknown row ${row.metric}`); continue; }
		for (const c of row.cells) {
			if (c.q === 'count') {
				if (intText(c.text) !== s.count - s.nulls) statBad.push(`${row.metric} count ${c.text} != ${s.count - s.nulls}`);
				continue;
			}
			const v = s[`${c.q}_ns`];
			if (!near(c.text, v)) statBad.push(`${row.metric} ${c.q}: shows ${c.text}, API ${v}`);
			if (String(v ?? '') !== c.ns) statBad.push(`${row.metric} ${c.q}: data-ns ${c.ns}, API ${v}`);
		}
	}
	check(statBad.length === 0, 'stats table shows the API percentiles (p50..max, per phase)', statBad.join('; '));
	const p99Text = await page.textContent('#stats tr[data-metric="fork"] td[data-q="p99"]');
	check(near(p99Text, stats.metrics.fork.p99_ns), `fork p99 shown as ${p99Text.trim()} (API ${stats.metrics.fork.p99_ns} ns)`);

	// --- KPIs
	check(intText(await page.textContent('[data-testid="kpi-forks"]')) === stats.forks, 'forks KPI matches /stats');
	const perPte = await page.textContent('[data-testid="kpi-ns-per-pte"]');
	check(Math.abs(parseFloat(perPte) - stats.cost.ns_per_pte) <= stats.cost.ns_per_pte * 0.005,
		`cost per PTE shown as ${perPte} (API ${stats.cost.ns_per_pte})`);
	const perGib = await page.textContent('[data-testid="kpi-ms-per-gib"]');
	check(Math.abs(parseFloat(perGib) - stats.cost.ms_per_gib) <= stats.cost.ms_per_gib * 0.005,
		`cost per GiB shown as ${perGib} (API ${stats.cost.ms_per_gib})`);

	// --- charts: the data uPlot drew, and ink on the canvas
	const charts = await page.evaluate(() => window.__ptescope.charts);
	check(eq(charts.histogram?.data?.[1], hist.bins.map((b) => b.count)), 'histogram draws the /histogram bin counts',
		JSON.stringify(charts.histogram?.data));
	check(eq(charts.timeseries?.data?.[0], ts.points.map((p) => p.t_wall_ns / 1e9)) &&
		eq(charts.timeseries?.data?.[1], ts.points.map((p) => p.p50_ns)) &&
		eq(charts.timeseries?.data?.[2], ts.points.map((p) => p.p99_ns)) &&
		eq(charts.timeseries?.data?.[3], ts.points.map((p) => p.max_ns)) &&
		eq(charts.timeseries?.data?.[4], ts.points.map((p) => p.count)),
	'time series draws the /timeseries points (p50, p99, max, count)', JSON.stringify(charts.timeseries?.data));
	const ink = await page.evaluate(() => Object.fromEntries(['hist', 'ts'].map((id) => {
		const cv = document.querySelector(`#${id} canvas`);
		if (!cv) return [id, 0];
		const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
		let n = 0;
		for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
		return [id, n];
	})));
	check(ink.hist > 200 && ink.ts > 200, 'both chart canvases were drawn on', JSON.stringify(ink));
	const legend = await page.textContent('#hist .u-legend');
	check(/forks/.test(legend ?? ''), 'histogram has a legend');

	// --- top processes
	const topRows = await page.$$eval('#top tbody tr', (rows) => rows.map((r) => [r.dataset.comm, ...[...r.querySelectorAll('td')].map((td) => td.textContent)]));
	check(topRows.length === top.comms.length && top.comms.every((c, i) => topRows[i][0] === c.comm &&
		(topRows[i][1] === c.comm || !c.comm) && intText(topRows[i][2]) === c.forks && near(topRows[i][3], c.p99_ns)),
	'top processes table matches /top', JSON.stringify(topRows));

	// --- latest forks: same ids, same order, same numbers
	const latestRows = await page.$$eval('#latest tbody tr.fork', (rows) => rows.map((r) => ({
		id: Number(r.dataset.id),
		total: r.querySelector('[data-k="total"]').textContent,
		cpr: r.querySelector('[data-k="copy_page_range_ns"]').textContent,
		cells: [...r.querySelectorAll('td')].map((td) => td.textContent),
	})));
	check(eq(latestRows.map((r) => r.id), latest.forks.map((f) => f.id)), 'latest forks: the ids of /forks, newest first',
		`${latestRows.map((r) => r.id)} vs ${latest.forks.map((f) => f.id)}`);
	const lf = latest.forks[0];
	check(latestRows[0] && near(latestRows[0].total, totalNs(lf)) && near(latestRows[0].cpr, lf.copy_page_range_ns) &&
		intText(latestRows[0].cells[8]) === lf.ptes && intText(latestRows[0].cells[5]) === lf.vmas,
	'latest fork row shows its total, copy_page_range, VMAs and PTEs', JSON.stringify(latestRows[0]));

	// --- slowest forks: longest first, the very slowest of the store on top
	const slowRows = await page.$$eval('#slow tbody tr.fork', (rows) => rows.map((r) => ({
		id: Number(r.dataset.id), total: r.querySelector('[data-k="total"]').textContent,
	})));
	const slowest = all.filter((f) => totalNs(f) !== null).sort((a, b) => totalNs(b) - totalNs(a))[0];
	check(slowRows.length > 0 && slowRows[0].id === slowest.id && near(slowRows[0].total, totalNs(slowest)),
		`slowest forks table starts with fork ${slowest.id} (${totalNs(slowest)} ns)`, JSON.stringify(slowRows.slice(0, 3)));

	// --- the doctor panel: the API's slow processes, their slowest forks, what fired and what could not be judged
	const doc = await api('/api/v1/doctor');
	const docRows = await page.$$eval('[data-testid="doctor-proc"]', (els) => els.map((e) => ({
		comm: e.dataset.comm, pid: e.dataset.pid,
		forks: [...e.querySelectorAll('a.doc-fork')].map((a) => Number(a.dataset.id)),
		verdicts: Object.fromEntries([...e.querySelectorAll('[data-rule]')].map((x) => [x.dataset.rule, x.dataset.verdict])),
		advice: e.querySelectorAll('.finding.fires .advice').length,
	})));
	check(doc.slow_processes.length > 0 && docRows.length === doc.slow_processes.length &&
		doc.slow_processes.every((p, i) => docRows[i].comm === p.comm && docRows[i].pid === String(p.pid) &&
			eq(docRows[i].forks, p.slowest_forks) &&
			p.findings.every((f) => docRows[i].verdicts[f.rule] === f.verdict) &&
			docRows[i].advice === p.findings.filter((f) => f.verdict === 'fires').length),
	`doctor panel shows the ${doc.slow_processes.length} slow processes of /api/v1/doctor with their slowest forks and verdicts`,
	JSON.stringify(docRows).slice(0, 400));
	const fk = docRows.find((r) => r.comm === 'forker');
	check(fk && fk.verdicts.page_tables_huge_pages === 'cannot_judge' && fk.verdicts.hypervisor_cost === 'cannot_judge' && fk.advice === 0,
		'doctor panel: the replayed forker gets no advice, and says what it could not judge');

	await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });

	// --- drill-down: the fork with the most passes (lock breaks if any)
	const pick = [...all].filter((f) => f.pte_passes !== null)
		.sort((a, b) => (b.lock_breaks ?? 0) - (a.lock_breaks ?? 0) || b.pte_passes - a.pte_passes)[0];
	const one = await api(`/api/v1/forks/${pick.id}`);
	await page.goto(`${base}/#/fork/${pick.id}`);
	await page.waitForSelector('[data-testid="detail"] [data-testid="detail-kv"]');
	const kv = await page.$$eval('[data-testid="detail-kv"] .kv[data-k]', (els) => Object.fromEntries(els.map((e) =>
		[e.dataset.k, { text: e.querySelector('.v').textContent, n: e.dataset.n, ns: e.dataset.ns }])));
	check(intText(kv.vmas.text) === one.vmas && intText(kv.pte_passes.text) === one.pte_passes &&
		intText(kv.lock_breaks.text) === one.lock_breaks && intText(kv.ptes.text) === one.ptes &&
		near(kv.max_lock_hold_ns.text, one.max_lock_hold_ns) && near(kv.total.text, totalNs(one)),
	`drill-down of fork ${pick.id} shows its VMAs, passes, lock breaks, PTEs, hold and total`, JSON.stringify(kv));
	const ckv = await page.$$eval('[data-testid="cost-kv"] .kv[data-k]', (els) => Object.fromEntries(els.map((e) =>
		[e.dataset.k, { text: e.querySelector('.v').textContent, n: e.dataset.n }])));
	check(one.parent_mem === null && (await page.$('[data-testid="mem-none"]')) !== null && !ckv.rss,
		`drill-down of a replayed fork says its parent's memory was not read`, JSON.stringify(one.parent_mem));
	check(one.cost.ns_per_pte !== null && Number(ckv.ns_per_pte.n) === one.cost.ns_per_pte &&
		Math.abs(Number(ckv.ns_per_pte.text) - one.cost.ns_per_pte) <= Math.max(0.01, one.cost.ns_per_pte * 0.006) &&
		intText(ckv.cost_pte_bytes.n) === one.ptes * 8 && ckv.ms_per_gib_rss.text === '—',
	`drill-down shows the cost model of fork ${pick.id} (ns per PTE ${one.cost.ns_per_pte}, no RSS figures)`, JSON.stringify(ckv));
	const wf = await page.$$eval('[data-testid="waterfall"] .wf-row', (rows) => rows.map((r) => ({ phase: r.dataset.phase, vma: r.dataset.vma, ns: r.dataset.ns })));
	check(wf.filter((r) => r.phase).length === 4 && wf.find((r) => r.phase === 'copy_page_range').ns === String(one.copy_page_range_ns),
		'waterfall has the four phases with the API times');
	check(wf.filter((r) => r.vma !== undefined).length === one.detail.vmas.length &&
		wf.filter((r) => r.vma !== undefined).every((r, i) => r.ns === String(one.detail.vmas[i].dur_ns ?? '')),
	`waterfall has one bar per VMA (${one.detail.vmas.length}) with the API durations`);
	const pc = await page.evaluate(() => window.__ptescope.charts.passes);
	const passes = one.detail.passes;
	check(pc && eq(pc.data[1], passes.map((p) => p.ptes)) && eq(pc.data[2], passes.map((p) => p.hold_ns)),
		`pass chart draws PTEs and lock hold of each of the ${passes.length} passes`);
	const marked = pc ? pc.data[3].filter((v) => v !== null).length : -1;
	check(marked === passes.filter((p) => p.resumed).length,
		`lock breaks marked on the pass chart: ${marked} (API: ${passes.filter((p) => p.resumed).length} resumed passes)`);
	await page.screenshot({ path: join(artifacts, 'fork-detail.png'), fullPage: true });
	await page.keyboard.press('Escape');
	await page.waitForSelector('[data-testid="detail"]', { state: 'hidden' });
	check(true, 'Escape closes the drill-down');

	// --- drill-down by clicking a row of the slowest table
	await page.click(`#slow tbody tr.fork[data-id="${slowest.id}"] td:nth-child(4)`);
	await page.waitForSelector('[data-testid="detail-kv"]');
	check((await page.textContent('#detail h2')).includes(`Fork ${slowest.id}`), 'clicking a slow fork opens its drill-down');
	await page.goto(`${base}/#/`);
	await page.waitForSelector('body[data-state="ready"]');

	// --- kinds: the tally of /kinds, each row's kind, and the kind filter
	const kinds = (await api('/api/v1/kinds')).kinds;
	const shown = await page.$$eval('[data-testid="kinds"] [data-kind]', (els) =>
		Object.fromEntries(els.map((e) => [e.dataset.kind, Number(e.dataset.n)])));
	check(eq(shown, { fork: kinds.fork, thread: kinds.thread, spawn: kinds.spawn, unknown: kinds.unknown }),
		'the kinds line shows /api/v1/kinds', `${JSON.stringify(shown)} vs ${JSON.stringify(kinds)}`);
	const rowKinds = await page.$$eval('#latest tbody tr.fork [data-k="kind"]', (els) => els.map((e) => e.textContent));
	check(rowKinds.length > 0 && rowKinds.every((k) => k === 'fork'), 'latest forks are address-space copies by default',
		JSON.stringify(rowKinds));
	await page.selectOption('#f-kind', 'all');
	await page.waitForFunction(() => JSON.stringify(window.__ptescope.last?.stats?.range?.kind) ===
		'["unknown","fork","thread","spawn"]');
	const statsAll = await api('/api/v1/stats?kind=all');
	check(intText(await page.textContent('[data-testid="kpi-forks"]')) === statsAll.forks &&
		statsAll.forks === kinds.fork + kinds.thread + kinds.spawn + kinds.unknown,
		`kind "every clone" shows /stats?kind=all (${statsAll.forks} clones)`);
	await page.selectOption('#f-kind', 'fork');
	await page.waitForFunction(() => JSON.stringify(window.__ptescope.last?.stats?.range?.kind) === '["fork"]');

	// --- filter by process
	const comm = top.comms.find((c) => c.comm)?.comm;
	const statsComm = await api(`/api/v1/stats?comm=${encodeURIComponent(comm)}`);
	await page.fill('#f-comm', comm);
	await page.waitForFunction((n) => window.__ptescope.last?.stats?.range?.comm === n, comm);
	check(intText(await page.textContent('[data-testid="kpi-forks"]')) === statsComm.forks,
		`filtering on comm=${comm} shows /stats?comm=${comm} (${statsComm.forks} forks)`);

	// --- empty state: a comm that never forked
	await page.fill('#f-comm', 'no-such-comm');
	await page.waitForSelector('body[data-state="empty"]');
	const emptyText = await page.textContent('#banner');
	check(/No forks stored yet for these filters/.test(emptyText) && /clear the process name/.test(emptyText),
		'empty state says what to do', emptyText.trim().slice(0, 120));
	await page.screenshot({ path: join(artifacts, 'empty.png') });
	await page.fill('#f-comm', '');
	await page.waitForSelector('body[data-state="ready"]');

	// --- live refresh: upload a second recording, the page follows without a reload
	const before = (await api('/api/v1/stats')).forks;
	const refreshesBefore = await page.evaluate(() => window.__ptescope.refreshes);
	const up = await fetch(`${base}/api/v1/replays?name=second.txt`, {
		method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: readFileSync(second),
	});
	check(up.status === 202 || up.status === 200, `replay upload accepted (HTTP ${up.status})`);
	const after = await waitFor('the uploaded forks in the API', async () => {
		const n = (await api('/api/v1/stats')).forks;
		return n > before ? n : 0;
	});
	await page.waitForFunction((n) => document.querySelector('[data-testid="kpi-forks"]')?.dataset.n === String(n), after, { timeout: 20000 });
	const refreshesAfter = await page.evaluate(() => window.__ptescope.refreshes);
	check(refreshesAfter > refreshesBefore, `live refresh shows the replayed forks (${before} -> ${after}) without a reload`);
	const latest2 = await api('/api/v1/forks?limit=25');
	await page.waitForFunction((id) => document.querySelector('#latest tbody tr.fork')?.dataset.id === String(id), latest2.forks[0].id);
	check(true, 'latest forks table follows the upload');

	check(consoleErrors.length === 0, 'no console errors, failed requests or HTTP errors', consoleErrors.join(' | '));

	// --- error state: the daemon stops answering
	expectErrors = true;
	await page.route('**/api/v1/**', (r) => r.abort('connectionrefused'));
	await page.click('#f-refresh');
	await page.waitForSelector('body[data-state="error"]');
	const errText = await page.textContent('#banner');
	check(/Could not load the data/.test(errText) && /systemctl status ptescoped/.test(errText),
		'error state names the problem and what to check', errText.trim().slice(0, 160));
	check((await page.textContent('[data-testid="status"]')).includes('unreachable'), 'status says the daemon is unreachable');
	await page.screenshot({ path: join(artifacts, 'error.png') });
	await page.unroute('**/api/v1/**');
	await page.click('#f-refresh');
	await page.waitForSelector('body[data-state="ready"]');
	check(true, 'the page recovers once the daemon answers again');

	// --- 404 drill-down
	await page.goto(`${base}/#/fork/999999999`);
	await page.waitForSelector('#detail .banner.error');
	check(/could not be loaded/.test(await page.textContent('#detail')), 'an unknown fork id says it could not be loaded');
}

try {
	await run();
} catch (e) {
	failures++;
	console.log(`FAIL ${e.stack ?? e}`);
	console.log(`--- server output ---\n${serverLog.slice(-4000)}`);
} finally {
	await cleanup();
}
console.log(`screenshots: ${artifacts}`);
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
