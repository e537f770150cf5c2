// A small JSON client for souk's API, used to choose test data (never to do what a
// journey step is meant to do through the pages).

import { request } from 'playwright-core';

export async function apiClient(baseURL) {
  const ctx = await request.newContext({ baseURL, ignoreHTTPSErrors: true });
  const call = async (method, path, { body, token, headers = {} } = {}) => {
    const res = await ctx.fetch(path, {
      method,
      data: body,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    if (!res.ok()) {
      throw new Error(`${method} ${path} answered ${res.status()}: ${text.slice(0, 500)}`);
    }
    return json;
  };
  return {
    get: (path, opts) => call('GET', path, opts),
    post: (path, body, opts = {}) => call('POST', path, { ...opts, body }),
    put: (path, body, opts = {}) => call('PUT', path, { ...opts, body }),
    dispose: () => ctx.dispose(),
  };
}
