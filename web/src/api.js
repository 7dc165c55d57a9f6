// The dashboard's only door to ptescoped: GET requests to /api/v1/* relative
// to the page (so the dashboard works behind a reverse proxy under a
// sub-path), with a timeout, and errors turned into one readable line
// (the API answers {"error": "..."} on 4xx/5xx).

const TIMEOUT_MS = 10000;

export class ApiError extends Error {
	constructor(path, status, message) {
		super(message);
		this.path = path;
		this.status = status; // 0: no answer (daemon down, network, timeout)
	}
}

export async function get(path, params = {}) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params))
		if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
	const url = path + (q.toString() ? `?${q}` : '');
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
	let resp;
	try {
		resp = await fetch(url, { signal: ctl.signal, headers: { Accept: 'application/json' } });
	} catch (e) {
		throw new ApiError(url, 0, ctl.signal.aborted
			? `no answer from ptescoped within ${TIMEOUT_MS / 1000} s (${url})`
			: `cannot reach ptescoped (${url}): ${e.message}`);
	} finally {
		clearTimeout(timer);
	}
	let body = null;
	try {
		body = await resp.json();
	} catch {
		// not JSON: the message below says so
	}
	if (!resp.ok) {
		const why = body && typeof body.error === 'string' ? body.error : resp.statusText;
		throw new ApiError(url, resp.status, `${url}: HTTP ${resp.status}: ${why}`);
	}
	if (body === null) throw new ApiError(url, resp.status, `${url}: the answer is not JSON`);
	return body;
}

// Phases in nesting order, outermost first.
export const PHASES = ['kernel_clone', 'copy_process', 'dup_mmap', 'copy_page_range'];

// The fork's total time as the server defines it (total_ns of the fork
// object: analyzer/fork.h pt_fork_total_ns, stored with the fork); null if
// the trace carried no phase.
export function forkTotalNs(f) {
	return typeof f.total_ns === 'number' ? f.total_ns : null;
}

// Metrics of /api/v1/stats, /histogram and /timeseries, with what they mean.
export const METRICS = [
	['fork', 'fork (outermost phase traced)'],
	['kernel_clone', 'kernel_clone'],
	['copy_process', 'copy_process'],
	['dup_mmap', 'dup_mmap'],
	['copy_page_range', 'copy_page_range'],
	['max_lock_hold', 'longest PTE lock hold per fork'],
	['pte_pass_hold', 'PTE lock hold per pass'],
];
