// uPlot charts of the dashboard: the latency histogram, the time series and
// the per-pass chart of one fork. Each chart keeps the exact arrays it drew
// in window.__ptescope.charts[name] so that the browser tests can compare
// them with what the API returned.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fmtNs, fmtInt, sig } from './format.js';

const registry = (window.__ptescope ??= { charts: {} }).charts;
const live = new Map(); // element -> { key, plot }

const COLORS = {
	bar: '#4a78c2',
	p50: '#2f8f5b',
	p99: '#d07a1c',
	max: '#c23b3b',
	count: 'rgba(120,120,120,0.35)',
	ptes: 'rgba(74,120,194,0.55)',
	hold: '#2f8f5b',
	brk: '#c23b3b',
};

function width(el) {
	return Math.max(280, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 600));
}

const ro = new ResizeObserver((entries) => {
	for (const e of entries) {
		const c = live.get(e.target);
		if (c) c.plot.setSize({ width: width(e.target), height: c.plot.height });
	}
});

// Draws @data with @opts in @el, reusing the plot when @key (the shape of the
// chart) is unchanged; records the data under @name for the tests.
function mount(el, name, key, opts, data) {
	registry[name] = { data: data.map((a) => Array.from(a)), drawn: true };
	const c = live.get(el);
	if (c && c.key === key) {
		c.plot.setData(data);
		return c.plot;
	}
	unmount(el);
	el.textContent = '';
	const plot = new uPlot(themed({ width: width(el), height: 260, ...opts }), data, el);
	live.set(el, { key, plot });
	ro.observe(el);
	return plot;
}

export function unmount(el, name) {
	const c = live.get(el);
	if (c) {
		c.plot.destroy();
		live.delete(el);
		ro.unobserve(el);
	}
	if (name) registry[name] = { data: [], drawn: false };
}

// uPlot paints axes on the canvas: give them the page's colours (dark mode).
function themed(opts) {
	const cs = getComputedStyle(document.documentElement);
	const fg = cs.getPropertyValue('--fg').trim() || '#1d2330';
	const line = cs.getPropertyValue('--line').trim() || '#e1e4ea';
	for (const a of opts.axes ?? []) {
		a.stroke ??= fg;
		a.grid = { stroke: line, width: 1, ...(a.grid ?? {}) };
		a.ticks = { stroke: line, width: 1, ...(a.ticks ?? {}) };
	}
	return opts;
}

const nsAxis = (label) => ({
	label,
	size: 70,
	values: (u, vals) => vals.map((v) => fmtNs(v)),
});

// bins: [{le_ns, count}] in ascending order (log-scale buckets of the API).
export function histogramChart(el, bins, metricLabel) {
	const x = bins.map((_, i) => i);
	const y = bins.map((b) => b.count);
	const labels = bins.map((b) => `≤ ${fmtNs(b.le_ns)}`);
	return mount(el, 'histogram', 'hist', {
		scales: { x: { time: false, range: (u, mn, mx) => [mn - 0.6, mx + 0.6] } },
		legend: { show: true },
		cursor: { points: { show: false } },
		series: [
			{ label: 'bucket', value: (u, v) => (v == null ? '' : labels[v] ?? '') },
			{
				label: `forks (${metricLabel})`,
				stroke: COLORS.bar,
				fill: COLORS.bar,
				paths: uPlot.paths.bars({ size: [0.8, 60] }),
				points: { show: false },
				value: (u, v) => (v == null ? '' : fmtInt(v)),
			},
		],
		axes: [
			{
				label: 'latency bucket (upper bound)',
				values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? labels[v] ?? '' : '')),
				size: 50,
			},
			{ label: 'forks', values: (u, vals) => vals.map((v) => fmtInt(v)), size: 60 },
		],
	}, [x, y]);
}

// points: [{t_wall_ns, count, p50_ns, p99_ns, max_ns}]
export function timeseriesChart(el, points, metricLabel) {
	const t = points.map((p) => p.t_wall_ns / 1e9);
	const data = [
		t,
		points.map((p) => p.p50_ns),
		points.map((p) => p.p99_ns),
		points.map((p) => p.max_ns),
		points.map((p) => p.count),
	];
	const one = points.length === 1;
	return mount(el, 'timeseries', one ? 'ts1' : 'ts', {
		scales: {
			// one point: uPlot would widen the x range by 86400/ms seconds (1000 days)
			x: { time: true, ...(one ? { range: (u, mn) => [mn - 150, mn + 150] } : {}) },
			ns: { range: (u, mn, mx) => [0, mx > 0 ? mx * 1.1 : 1] },
			n: { range: (u, mn, mx) => [0, mx > 0 ? mx * 1.1 : 1] },
		},
		series: [
			{},
			{ label: 'p50', scale: 'ns', stroke: COLORS.p50, width: 2, value: (u, v) => fmtNs(v), points: { show: one } },
			{ label: 'p99', scale: 'ns', stroke: COLORS.p99, width: 2, value: (u, v) => fmtNs(v), points: { show: one } },
			{ label: 'max', scale: 'ns', stroke: COLORS.max, width: 1, dash: [4, 4], value: (u, v) => fmtNs(v), points: { show: one } },
			{
				label: 'forks', scale: 'n', stroke: COLORS.count, fill: COLORS.count,
				paths: uPlot.paths.bars({ size: [0.6, 40] }), points: { show: false },
				value: (u, v) => fmtInt(v),
			},
		],
		axes: [
			{},
			{ ...nsAxis(metricLabel), scale: 'ns' },
			{ scale: 'n', side: 1, label: 'forks', grid: { show: false }, values: (u, vals) => vals.map((v) => fmtInt(v)) },
		],
	}, data);
}

// passes: [{vma, ptes, start_ns, hold_ns, new_pmd, resumed}]. A resumed pass
// is the same PMD again after the copy loop dropped its locks: a lock break.
export function passChart(el, passes) {
	const x = passes.map((_, i) => i + 1);
	const ptes = passes.map((p) => p.ptes);
	const hold = passes.map((p) => p.hold_ns);
	const brk = passes.map((p) => (p.resumed ? p.hold_ns ?? 0 : null));
	return mount(el, 'passes', 'passes', {
		height: 240,
		scales: {
			x: { time: false, range: (u, mn, mx) => [mn - 0.6, mx + 0.6] },
			n: { range: (u, mn, mx) => [0, mx > 0 ? mx * 1.1 : 1] },
			ns: { range: (u, mn, mx) => [0, mx > 0 ? mx * 1.1 : 1] },
		},
		series: [
			{ label: 'pass', value: (u, v) => (v == null ? '' : `#${v} (VMA ${passes[v - 1]?.vma ?? '?'})`) },
			{
				label: 'PTEs', scale: 'n', stroke: COLORS.ptes, fill: COLORS.ptes,
				paths: uPlot.paths.bars({ size: [0.9, 30] }), points: { show: false },
				value: (u, v) => fmtInt(v),
			},
			{ label: 'lock hold', scale: 'ns', stroke: COLORS.hold, width: 1.5, value: (u, v) => fmtNs(v), points: { show: passes.length < 60 } },
			{
				label: 'lock break (resumed)', scale: 'ns', stroke: COLORS.brk, width: 0,
				paths: () => null, points: { show: true, size: 9, fill: COLORS.brk, stroke: COLORS.brk },
				value: (u, v) => (v == null ? '' : 'yes'),
			},
		],
		axes: [
			{ label: 'PTE pass (locks taken … dropped)', values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')) },
			{ scale: 'n', label: 'PTEs copied', values: (u, vals) => vals.map((v) => fmtInt(v)), size: 60 },
			{ ...nsAxis('lock hold'), scale: 'ns', side: 1, grid: { show: false } },
		],
	}, [x, ptes, hold, brk]);
}

export { sig };
