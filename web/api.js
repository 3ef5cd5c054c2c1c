// The console's one way to the HTTP API: the signed-in token rides on every call.
const TOKEN_KEY = 'herald.token';

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || 'error';
    this.field = err.field || '';
    this.detail = err;
  }
}

// Kept for this browser tab only: closing the tab signs out.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function call(method, path, body, { raw = false, tokenOverride } = {}) {
  const headers = { Accept: 'application/json' };
  const t = tokenOverride || token();
  if (t) {
    headers.Authorization = `Bearer ${t}`;
  }
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  // Relative to the console (/ui/), so a reverse proxy may serve Herald under a path prefix.
  const response = await fetch(`..${path}`, init);
  if (raw && response.ok) {
    return response;
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { error: { message: text.trim() } };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 && !tokenOverride) {
      onUnauthorized(error);
    }
    throw error;
  }
  return parsed;
}

export const get = (path) => call('GET', path);
export const put = (path, body) => call('PUT', path, body);
export const post = (path, body) => call('POST', path, body);
export const del = (path) => call('DELETE', path);

// A path segment or query value, escaped.
export const seg = encodeURIComponent;

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') {
      q.set(k, v);
    }
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
