import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import express from 'express';
import { dashboardHandler, serveDashboard } from '../src/dashboard/index.js';
import type { Context, WorkflowInfo } from '../src/index.js';
import { defineBrowserTests } from './dashboard-ui.js';
import { closeServers, listen, post, recordingLogger, register, session } from './dashboard-fixtures.js';
import type { Target } from './helpers/targets.js';
import { until } from './helpers/worker.js';

/** The dashboard handler, on a database holding workflows in several statuses: in a browser, over HTTP, mounted, and served. */
export function defineDashboardSuite(target: Target): void {
  describe(`the dashboard on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(async () => {
      await closeServers();
      await target.closeAll();
    });
    after(() => target.dispose());

    defineBrowserTests(target);

    test('actions are form posts that need the CSRF token of this browser and the same origin', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      const { approval } = register(engine, { up: false });
      await approval.start(undefined, { id: 'a-parked' });
      const origin = await listen(dashboardHandler({ client: engine, basePath: '/ops' }));

      const page = await fetch(`${origin}/ops/workflows/a-parked`);
      assert.equal(page.status, 200);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]+'/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
      const cookie = page.headers.getSetCookie().find((c) => c.startsWith('cairn_csrf='))!;
      assert.match(cookie, /; Path=\/ops; HttpOnly; SameSite=Strict$/);
      const html = await page.text();
      assert.ok(!/<script(?![^>]*nonce=)/.test(html) && !/<style(?![^>]*nonce=)/.test(html), 'every script and style carries the nonce');
      assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html), 'no asset from the network');

      const { cookie: jar, token } = await session(`${origin}/ops/workflows/a-parked`);
      const cancel = `${origin}/ops/workflows/a-parked/cancel`;
      const refused = async (res: Response, code: string) => {
        assert.equal(res.status, 403);
        assert.match(await res.text(), new RegExp(code === 'CSRF' ? 'security token' : 'another origin'));
        assert.equal((await engine.getWorkflow('a-parked')).status, 'PENDING', 'nothing changed');
      };
      await refused(await post(cancel, {}, { cookie: jar }), 'CSRF');
      await refused(await post(cancel, { _csrf: token }), 'CSRF');
      await refused(await post(cancel, { _csrf: `${token.slice(0, -2)}AA` }, { cookie: jar }), 'CSRF');
      const other = await session(`${origin}/ops/workflows/a-parked`);
      await refused(await post(cancel, { _csrf: other.token }, { cookie: jar }), 'CSRF');
      await refused(await post(cancel, { _csrf: token }, { cookie: jar, origin: 'http://evil.example' }), 'ORIGIN');
      await refused(await post(cancel, { _csrf: token }, { cookie: jar, origin: 'null', 'sec-fetch-site': 'same-site' }), 'ORIGIN');
      await refused(await post(cancel, { _csrf: token }, { cookie: jar, 'sec-fetch-site': 'cross-site' }), 'ORIGIN');

      const done = await post(cancel, { _csrf: token }, { cookie: jar, origin });
      assert.equal(done.status, 303);
      assert.equal(done.headers.get('location'), '/ops/workflows/a-parked?done=cancelled');
      assert.equal((await engine.getWorkflow('a-parked')).status, 'CANCELLED');
      assert.equal((await fetch(cancel)).status, 405, 'an action is never a GET');
      assert.equal((await post(`${origin}/ops/workflows`, { _csrf: token }, { cookie: jar })).status, 405);
    });

    test('auth: false is 401 for pages and actions, a throw is a logged 500; read-only refuses every POST', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      const { approval } = register(engine, { up: false });
      await approval.start(undefined, { id: 'a-parked' });
      const calls: string[] = [];
      const guarded = await listen(
        dashboardHandler({
          client: engine,
          basePath: '/',
          auth: async (req) => (calls.push(`${req.method} ${req.url}`), req.headers.authorization === 'Bearer admin'),
        }),
      );
      const denied = await fetch(`${guarded}/workflows`);
      assert.equal(denied.status, 401);
      assert.match(await denied.text(), /Not authorized/);
      assert.equal((await post(`${guarded}/workflows/a-parked/cancel`, {})).status, 401);
      assert.equal((await engine.getWorkflow('a-parked')).status, 'PENDING');
      assert.equal((await fetch(`${guarded}/workflows?format=json`)).status, 401);
      const allowed = await fetch(`${guarded}/workflows/a-parked`, { headers: { authorization: 'Bearer admin' } });
      assert.equal(allowed.status, 200);
      assert.deepEqual(calls, ['GET /workflows', 'POST /workflows/a-parked/cancel', 'GET /workflows?format=json', 'GET /workflows/a-parked']);

      const logger = recordingLogger();
      const broken = await listen(dashboardHandler({ client: engine, basePath: '/', logger, auth: () => { throw new Error('secret detail of the auth backend'); } }));
      const failed = await fetch(`${broken}/workflows`);
      assert.equal(failed.status, 500);
      const body = await failed.text();
      assert.ok(!body.includes('secret detail') && !/\bat .*\.ts:\d+/.test(body), 'no message or stack of the failure reaches the client');
      assert.equal(logger.errors.length, 1);
      assert.match(String((logger.errors[0]!.obj as { err: Error }).err.message), /secret detail/);

      const readOnly = await listen(dashboardHandler({ client: engine, basePath: '/', readOnly: true }));
      const html = await (await fetch(`${readOnly}/workflows/a-parked`)).text();
      assert.ok(!html.includes('method="post"') && !html.includes('name="_csrf"'), 'no action form');
      const post403 = await post(`${readOnly}/workflows/a-parked/cancel`, {});
      assert.equal(post403.status, 403);
      assert.match(await post403.text(), /read-only/);
      assert.equal((await engine.getWorkflow('a-parked')).status, 'PENDING');
    });

    test('bad input is a 400 that says what was wrong; an unknown id or page a 404; JSON on request', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      const fixture = { up: true };
      const { charge } = register(engine, fixture);
      for (let i = 0; i < 5; i++) await charge.run(i, { id: `c-${i}` });
      const origin = await listen(dashboardHandler({ client: engine, basePath: '/' }));
      const expect = async (path: string, status: number, pattern: RegExp, init?: RequestInit) => {
        const res = await fetch(`${origin}${path}`, init);
        const text = await res.text();
        assert.equal(res.status, status, `${path}: ${text.slice(0, 300)}`);
        assert.match(text, pattern, path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      };
      await expect('/workflows/%00', 400, /workflow id must not contain a NUL character/);
      await expect(`/workflows/${'a'.repeat(300)}`, 400, /workflow id must be at most 255 characters, got 300/);
      await expect('/workflows/%E0%A4%A', 400, /not valid percent-encoded UTF-8/);
      await expect('/workflows/%C3%28', 400, /not valid percent-encoded UTF-8/);
      await expect('/workflows/nope', 404, /no workflow with id &#39;nope&#39; exists/);
      await expect('/nowhere', 404, /no such page/);
      const head = await fetch(`${origin}/workflows`, { method: 'HEAD' });
      assert.deepEqual([head.status, await head.text()], [200, '']);
      await expect('/workflows', 405, /PUT is not allowed here/, { method: 'PUT' });
      await expect('/workflows/c-1/steps/more', 404, /no such page/);
      await expect('/workflows?status=DONE', 400, /status &#39;DONE&#39; is not one of PENDING, ENQUEUED/);
      await expect('/workflows?limit=0', 400, /limit must be a whole number from 1 to 500, got &#39;0&#39;/);
      await expect('/workflows?createdAfter=yesterday', 400, /createdAfter must be an ISO time/);
      await expect('/workflows?order=sideways', 400, /order must be &#39;asc&#39; or &#39;desc&#39;/);
      await expect('/workflows?after=garbage', 400, /after must be a page cursor/);
      await expect('/workflows?name=a&name=b', 400, /name may be given once/);
      await expect('/workflows?format=xml', 400, /format must be &#39;json&#39; or &#39;html&#39;/);
      await expect('/workflows?status=DONE&format=json', 400, /"code": "BAD_FILTER"/);
      await expect('/workflows/nope', 404, /"code": "WORKFLOW_NOT_FOUND"/, { headers: { accept: 'application/json' } });

      // Filters and keyset paging, as JSON.
      const list = async (query: string) => (await (await fetch(`${origin}/workflows?${query}`, { headers: { accept: 'application/json' } })).json()) as { workflows: WorkflowInfo[]; next: string | null };
      assert.deepEqual((await list('id=c-3')).workflows.map((w) => w.id), ['c-3']);
      assert.equal((await list('createdBefore=2000-01-01T00:00')).workflows.length, 0);
      assert.equal((await list('createdAfter=1h&status=SUCCESS&name=charge')).workflows.length, 5);
      const seen: string[] = [];
      let next: string | null = '/workflows?order=asc&limit=2';
      while (next) {
        const page = (await (await fetch(`${origin}${next}&format=json`)).json()) as { workflows: WorkflowInfo[]; next: string | null };
        assert.ok(page.workflows.length <= 2);
        seen.push(...page.workflows.map((w) => w.id));
        next = page.next;
      }
      assert.deepEqual(seen, ['c-0', 'c-1', 'c-2', 'c-3', 'c-4']);
      const html = await (await fetch(`${origin}/workflows?limit=2`)).text();
      assert.match(html, /href="\/workflows\?limit=2&amp;after=\d+%3Ac-3" rel="next"/);
      const one = (await (await fetch(`${origin}/workflows/c-2?format=json`)).json()) as { workflow: WorkflowInfo; steps: Array<{ name: string }> };
      assert.deepEqual([one.workflow.id, one.workflow.status, one.workflow.output], ['c-2', 'SUCCESS', { paid: 2 }]);
      assert.deepEqual(one.steps.map((s) => s.name), ['reserve', 'pay']);

      // Action errors from the Client are pages with their status, never a crash.
      const { cookie, token } = await session(`${origin}/workflows/c-2`);
      const act = (path: string, fields: Record<string, string> = {}) => post(`${origin}${path}`, { _csrf: token, ...fields }, { cookie });
      const notRetryable = await act('/workflows/c-2/retry');
      assert.equal(notRetryable.status, 400);
      assert.match(await notRetryable.text(), /workflow &#39;c-2&#39; is SUCCESS; retry runs a workflow that ended ERROR/);
      assert.equal((await act('/workflows/c-2/retry', { fromStep: 'two' })).status, 400);
      assert.equal((await act('/workflows/c-2/fork')).status, 400);
      assert.equal((await act('/workflows/nope/cancel')).status, 404);
      assert.equal((await act('/workflows/c-2/explode')).status, 404);
      const forked = await act('/workflows/c-2/fork', { fromStep: '2', newId: 'c-2-again' });
      assert.equal(forked.status, 303);
      assert.equal(forked.headers.get('location'), '/workflows/c-2-again?done=forked');
      await until('the fork has run', async () => (await engine.getWorkflow('c-2-again')).status === 'SUCCESS', 20_000);
      const taken = await act('/workflows/c-2/fork', { fromStep: '1', newId: 'c-2-again' });
      assert.equal(taken.status, 400);
      assert.match(await taken.text(), /already taken/);
    });

    test('queues, schedules, executors and versions pages; schedule actions', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      engine.workflow('beat', async (ctx: Context) => ctx.step('tick', () => 1));
      engine.queue('emails', { concurrency: 2, rateLimit: { limit: 10, periodMs: 60_000 } });
      await engine.launch();
      await engine.enqueue('nobody_runs_this', { to: 'ada' }, { queue: 'emails', id: 'e-1' });
      await engine.schedules.create('nightly', '0 2 * * *', 'beat');
      const origin = await listen(dashboardHandler({ client: engine, basePath: '/' }));
      const get = async (path: string) => {
        const res = await fetch(`${origin}${path}`);
        assert.equal(res.status, 200, path);
        return res.text();
      };
      assert.match(await get('/queues'), /data-queue="emails"[\s\S]*?10 per 1m[\s\S]*?status=ENQUEUED">1</);
      assert.match(await get('/workflows/e-1'), /Waiting in queue <b>emails<\/b>/);
      assert.match(await get('/executors'), /data-executor="dash"[\s\S]*?class="yes">alive/);
      assert.match(await get('/versions'), /data-version="v1"/);
      const schedules = await get('/schedules');
      assert.match(schedules, /data-schedule="nightly"[\s\S]*?<code>0 2 \* \* \*<\/code>[\s\S]*?class="yes">active/);

      const { cookie, token } = await session(`${origin}/schedules`);
      const act = (path: string) => post(`${origin}${path}`, { _csrf: token }, { cookie });
      const paused = await act('/schedules/nightly/pause');
      assert.equal(paused.status, 303);
      assert.equal(paused.headers.get('location'), '/schedules?done=paused');
      assert.equal((await engine.schedules.get('nightly'))?.paused, true);
      assert.match(await get('/schedules'), /muted">paused/);
      assert.equal((await act('/schedules/nightly/resume')).status, 303);
      assert.equal((await engine.schedules.get('nightly'))?.paused, false);
      const triggered = await act('/schedules/nightly/trigger');
      assert.equal(triggered.status, 303);
      const location = triggered.headers.get('location')!;
      assert.match(location, /^\/workflows\/nightly%40trigger%3A.+\?done=triggered$/);
      const id = decodeURIComponent(location.slice('/workflows/'.length, location.indexOf('?')));
      await until('the triggered workflow has run', async () => (await engine.getWorkflow(id)).status === 'SUCCESS', 20_000);
      assert.match(await get(location), /Triggered: this is the schedule/);
      assert.equal((await act('/schedules/nope/pause')).status, 404);

      // An engine given as the client runs resumed work itself: a workflow it does not register is a 409.
      assert.equal((await act('/workflows/e-1/cancel')).status, 303);
      const unknown = await act('/workflows/e-1/resume');
      assert.equal(unknown.status, 409);
      assert.match(await unknown.text(), /UNKNOWN_WORKFLOW/);
      assert.equal((await engine.getWorkflow('e-1')).status, 'CANCELLED');
    });

    test('mounted under /admin/cairn in node:http and in Express; other paths fall through to the app', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      const fixture = { up: false };
      const { charge, approval } = register(engine, fixture);
      await assert.rejects(charge.run(3, { id: 'c-failed' }), /payments down/);
      await approval.start(undefined, { id: 'a-parked' });
      const dashboard = dashboardHandler({ client: engine, basePath: '/admin/cairn' });

      const plain = await listen((req, res) => dashboard(req, res, () => res.end(`app: ${req.url}`)));
      const list = await (await fetch(`${plain}/admin/cairn`)).text();
      assert.match(list, /href="\/admin\/cairn\/workflows\/c-failed"/);
      assert.match(await (await fetch(`${plain}/admin/cairn/workflows/c-failed`)).text(), /payments down/);
      assert.equal(await (await fetch(`${plain}/hello`)).text(), 'app: /hello');
      assert.equal(await (await fetch(`${plain}/admin/cairnish`)).text(), 'app: /admin/cairnish');
      const s1 = await session(`${plain}/admin/cairn/workflows/a-parked`);
      const cancelled = await post(`${plain}/admin/cairn/workflows/a-parked/cancel`, { _csrf: s1.token }, { cookie: s1.cookie, origin: plain });
      assert.equal(cancelled.status, 303);
      assert.equal(cancelled.headers.get('location'), '/admin/cairn/workflows/a-parked?done=cancelled');
      assert.equal((await engine.getWorkflow('a-parked')).status, 'CANCELLED');

      const app = express();
      app.use('/admin/cairn', dashboard);
      app.use(dashboardHandler({ client: engine, basePath: '/ops/cairn' }));
      app.get('/hello', (_req, res) => {
        res.send('express hello');
      });
      const ex = await listen(app);
      const mounted = await fetch(`${ex}/admin/cairn/`);
      assert.equal(mounted.status, 200);
      assert.match(await mounted.text(), /href="\/admin\/cairn\/workflows\/c-failed"/);
      assert.match(await (await fetch(`${ex}/admin/cairn/workflows/c-failed`)).text(), /payments down/);
      assert.match(await (await fetch(`${ex}/ops/cairn/workflows?status=ERROR`)).text(), /href="\/ops\/cairn\/workflows\/c-failed"/);
      assert.equal(await (await fetch(`${ex}/hello`)).text(), 'express hello');
      assert.equal((await fetch(`${ex}/admin/cairn/nowhere`)).status, 404);
      const s2 = await session(`${ex}/admin/cairn/workflows/c-failed`);
      assert.match(s2.cookie, /^cairn_csrf=/);
      fixture.up = true;
      const retried = await post(`${ex}/admin/cairn/workflows/c-failed/retry`, { _csrf: s2.token, fromStep: '2' }, { cookie: s2.cookie, origin: ex });
      assert.equal(retried.status, 303);
      assert.equal(retried.headers.get('location'), '/admin/cairn/workflows/c-failed?done=retried');
      await until('the retried workflow has run', async () => (await engine.getWorkflow('c-failed')).status === 'SUCCESS', 20_000);
    });

    test('serveDashboard binds 127.0.0.1 by default, opens the database lazily and closes it', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
      await register(engine, { up: true }).charge.run(1, { id: 'c-served' });
      const served = await serveDashboard({ database: store.database, ...(store.schema !== undefined && { schema: store.schema }) });
      try {
        assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
        const res = await fetch(served.url);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /data-id="c-served"/);
        const json = (await (await fetch(`${served.url}workflows/c-served?format=json`)).json()) as { workflow: WorkflowInfo };
        assert.equal(json.workflow.status, 'SUCCESS');
      } finally {
        await served.close();
      }
      await assert.rejects(fetch(served.url), 'the server is closed');

      const mounted = await serveDashboard({ client: engine, basePath: '/cairn', readOnly: true });
      try {
        assert.match(mounted.url, /^http:\/\/127\.0\.0\.1:\d+\/cairn\/$/);
        assert.match(await (await fetch(`${mounted.url}workflows`)).text(), /data-id="c-served"/);
      } finally {
        await mounted.close();
      }
      assert.equal((await engine.getWorkflow('c-served')).status, 'SUCCESS', 'a client given to the dashboard is left open');
      assert.throws(() => dashboardHandler({ basePath: '/' } as never), /either a database URL or a client/);
      assert.throws(() => dashboardHandler({ client: engine, basePath: 'admin' }), /basePath must be a URL path/);
      await assert.rejects(serveDashboard({ client: engine, port: 70_000 }), /port must be a whole number/);
    });
  });
}
