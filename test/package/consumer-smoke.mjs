// Run by test/package/pack.test.ts inside a throwaway app that installed the packed tarball:
// imports `tollgate` as a user would (ESM, from node_modules), serves the guard, apiKeyAuth and
// the admin router with whatever Express the app has, and prints what it saw as one JSON line.
import express from 'express';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { Tollgate, apiKeyAuth, createAdminRouter, quotaGuard } from 'tollgate';

const { REDIS_URL, SMOKE_USER, SMOKE_KEY, SMOKE_TOKEN } = process.env;
const require = createRequire(import.meta.url);

// The app's own ioredis client: the one copy, shared with tollgate as a peer dependency.
const client = new Redis(REDIS_URL);
const tollgate = new Tollgate({ redis: client });
const app = express();
app.get('/u/:username/api/v1/geocode', quotaGuard({ tollgate, kind: 'geocoding' }), (_req, res) => {
  res.json({ ok: true });
});
// A failing identify(): a 500 problem, not a hang or a crashed process.
app.get(
  '/u/:username/api/v1/broken',
  quotaGuard({ tollgate, kind: 'geocoding', identify: () => Promise.reject(new Error('identity service down')) }),
  (_req, res) => res.json({ ok: true }),
);
app.get('/u/:username/api/v1/whoami', apiKeyAuth({ tollgate }), (_req, res) => {
  res.json({ user: res.locals.tollgate.identity.user });
});
app.use('/admin', createAdminRouter({ tollgate, token: SMOKE_TOKEN, log: () => undefined }));
// Express's default error handler would print the stack; a short status is all the test needs.
app.use((_error, _req, res, _next) => {
  res.status(500).json({ error: 'handled' });
});

const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const get = async (path, headers = {}) => {
  const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  return { status: response.status, ratelimit: response.headers.get('ratelimit'), body: await response.json() };
};

const page = async (path) => {
  const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, type: response.headers.get('content-type'), bytes: (await response.text()).length };
};

const geocode = `/u/${SMOKE_USER}/api/v1/geocode?api_key=${SMOKE_KEY}`;
const result = {
  express: require('express/package.json').version,
  ioredis: require('ioredis/package.json').version,
  first: await get(geocode),
  second: await get(geocode),
  wrongKey: await get(`/u/${SMOKE_USER}/api/v1/geocode?api_key=wrong`),
  broken: await get(`/u/${SMOKE_USER}/api/v1/broken?api_key=${SMOKE_KEY}`),
  whoami: await get(`/u/${SMOKE_USER}/api/v1/whoami?api_key=${SMOKE_KEY}`),
  adminUnknownUser: await get('/admin/users/nobody-here', { authorization: `Bearer ${SMOKE_TOKEN}` }),
  adminUser: await get(`/admin/users/${SMOKE_USER}`, { authorization: `Bearer ${SMOKE_TOKEN}` }),
  dashboardPage: await page('/admin/dashboard'),
  dashboardChart: await page('/admin/dashboard/assets/uplot/uPlot.iife.min.js'),
};
console.log(JSON.stringify(result));
server.close();
await tollgate.close();
client.disconnect();
