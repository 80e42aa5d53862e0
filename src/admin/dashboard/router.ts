// The usage dashboard: its page and assets (no data, served without a token) and the JSON it reads (behind the admin token).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import { withForwardedRejections } from '../../http/express-compat.js';
import { ERROR_CODES, InvalidInputError } from '../../core/errors.js';
import type { Tollgate } from '../../tollgate.js';
import { AdminOperations } from '../operations.js';
import { dashboardData, search } from './data.js';

/** The folder of the page's static files (`dashboard/` beside `lua/`), found from this module whether it runs from src/ or dist/src/. */
function staticFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth += 1) {
    const candidate = join(dir, 'dashboard');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('Tollgate cannot find its dashboard/ folder next to the package');
}

/** uPlot's browser build, served from the installed package: the page works offline. */
function uplotFolder(): string {
  return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

/**
 * `GET /dashboard` (the page: a login form that keeps the token in the tab's sessionStorage)
 * and `/dashboard/assets/*`. They hold no data, so they are served before the token check;
 * everything the page shows comes from {@link dashboardApi}, which needs the token.
 */
export function dashboardAssets(): Router {
  const router = withForwardedRejections(express.Router());
  const folder = staticFolder();
  const noStore = { 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'" };
  router.get('/dashboard', (req, res) => {
    // The page's links are relative to /admin/dashboard: a trailing slash would shift them.
    if (req.path.endsWith('/')) return void res.redirect(301, req.originalUrl.replace(/\/+(\?|$)/, '$1'));
    res.set(noStore).sendFile(join(folder, 'index.html'));
  });
  router.use('/dashboard/assets/uplot', express.static(uplotFolder(), { index: false }));
  router.use('/dashboard/assets', express.static(folder, { index: false }));
  return router;
}

/**
 * The dashboard's JSON, behind the admin token (mount after the admin router's token check):
 * `GET /dashboard/data/search?q=` and `GET /dashboard/data/view?user=|org=`.
 */
export function dashboardApi(options: { readonly tollgate: Tollgate; readonly clock?: () => number }): Router {
  const router = withForwardedRejections(express.Router());
  const ops = new AdminOperations(options.tollgate);
  const one = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  router.get('/dashboard/data/search', async (req, res) => {
    res.json({ hits: await search(options.tollgate, (one(req.query.q) ?? '').trim()) });
  });
  router.get('/dashboard/data/view', async (req, res) => {
    const user = one(req.query.user);
    const org = one(req.query.org);
    if ((user === undefined) === (org === undefined)) {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'give exactly one of user= or org=');
    }
    const target = user !== undefined ? { user } : { org: org as string };
    res.set('Cache-Control', 'no-store').json(await dashboardData(options.tollgate, ops, target, options.clock));
  });
  return router;
}
