// Number and time formatting shared by the views. Durations arrive from the
// API in nanoseconds (or null when the trace did not carry them); they are
// shown with three significant digits in the unit that fits.

export const DASH = '—';

export function isNum(v) {
	return typeof v === 'number' && Number.isFinite(v);
}

export function fmtNs(ns) {
	if (!isNum(ns)) return DASH;
	const a = Math.abs(ns);
	if (a < 1e3) return `${Math.round(ns)} ns`;
	if (a < 1e6) return `${sig(ns / 1e3)} µs`;
	if (a < 1e9) return `${sig(ns / 1e6)} ms`;
	return `${sig(ns / 1e9)} s`;
}

// Three significant digits, no exponent.
export function sig(x) {
	const a = Math.abs(x);
	if (a >= 100) return x.toFixed(0);
	if (a >= 10) return x.toFixed(1);
	return x.toFixed(2);
}

export function fmtInt(v) {
	if (!isNum(v)) return DASH;
	return Math.round(v).toLocaleString('en-US');
}

export function fmtBytes(b) {
	if (!isNum(b)) return DASH;
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (Math.abs(b) >= 1024 && i < u.length - 1) {
		b /= 1024;
		i++;
	}
	return i ? `${sig(b)} ${u[i]}` : `${b} B`;
}

export function fmtAge(s) {
	if (!isNum(s)) return DASH;
	if (s < 120) return `${Math.round(s)} s`;
	if (s < 7200) return `${Math.round(s / 60)} min`;
	if (s < 172800) return `${sig(s / 3600)} h`;
	return `${sig(s / 86400)} d`;
}

// Wall-clock nanoseconds since the epoch as local "YYYY-MM-DD HH:MM:SS".
export function fmtWall(ns) {
	if (!isNum(ns) || ns <= 0) return DASH;
	const d = new Date(ns / 1e6);
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
		`${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Trace-clock nanoseconds (seconds since the traced box booted, usually).
export function fmtTraceTs(ns) {
	if (!isNum(ns)) return DASH;
	return `${(ns / 1e9).toFixed(6)} s`;
}

export function esc(s) {
	return String(s ?? '').replace(/[&<>"']/g, (c) => ({
		'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
	})[c]);
}

// A comm as the kernel gave it: control bytes shown as \xNN, so that a
// garbled or hostile name stays visible and cannot break the layout.
export function fmtComm(c) {
	if (c === null || c === undefined) return '?';
	if (c === '') return '(empty)';
	return c.replace(/[\u0000-\u001f\u007f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
