import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { Locator } from 'playwright-core';
import { dashboardHandler } from '../src/dashboard/index.js';
import type { Context } from '../src/index.js';
import { browserSkip, openBrowser, screenshot, type Browser } from './dashboard-browser.js';
import { EVIL, listen, register } from './dashboard-fixtures.js';
import type { Target } from './helpers/targets.js';

const DOCS_SCREENSHOT = fileURLToPath(new URL('../docs/images/dashboard-workflow.png', import.meta.url));

/** One attribute of every element a locator finds. */
function attrs(locator: Locator, name: string): Promise<Array<string | null>> {
  return locator.evaluateAll((elements, attribute) => elements.map((e) => e.getAttribute(attribute)), name);
}

/** The dashboard in a real Chromium: what a person sees and clicks. */
export function defineBrowserTests(target: Target): void {
  const skip = target.skip || browserSkip;
  let browser: Browser | undefined;
  const open = async () => (browser ??= await openBrowser());
  const closeBrowser = async () => {
    await browser?.close();
    browser = undefined;
  };

  test('in a browser: filter the list, read the timeline, retry from the page, cancel, follow live changes', { skip, timeout: 180_000 }, async (t) => {
    t.after(closeBrowser);
    const store = await target.fresh();
    const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
    const fixture = { up: false };
    const { charge, approval } = register(engine, fixture);
    await assert.rejects(charge.run(5, { id: 'c-failed' }), /payments down/);
    fixture.up = true;
    await charge.run(7, { id: 'c-ok' });
    fixture.up = false;
    await approval.start(undefined, { id: 'a-parked' });
    await approval.start(undefined, { id: 'a-live' });
    const origin = await listen(dashboardHandler({ client: engine, basePath: '/' }));
    const page = await (await open()).page();

    // The list, then filtered to ERROR through the form.
    await page.goto(`${origin}/workflows`);
    const ids = () => attrs(page.locator('tr[data-id]'), 'data-id');
    assert.deepEqual((await ids()).sort(), ['a-live', 'a-parked', 'c-failed', 'c-ok']);
    await page.selectOption('select[name=status]', 'ERROR');
    await Promise.all([page.waitForURL(/status=ERROR/), page.click('form.filters button[type=submit]')]);
    assert.deepEqual(await ids(), ['c-failed']);
    assert.equal(await page.locator('tr[data-id=c-failed] .badge').textContent(), 'ERROR');
    await screenshot(page, `dashboard-${target.kind}-list-error`);

    // The workflow page: its two steps as rows of the waterfall, the failed one drawn red.
    await Promise.all([page.waitForURL(/\/workflows\/c-failed$/), page.click('a.id:text-is("c-failed")')]);
    assert.equal(await page.locator('[data-fact=status] .badge').textContent(), 'ERROR');
    const rows = page.locator('.tl-row');
    assert.equal(await rows.count(), 2);
    assert.deepEqual(await rows.locator('.tl-name b').allTextContents(), ['stepreserve', 'steppay']);
    assert.match((await page.locator('#step-2 .tl-name small').textContent())!, /Error: payments down/);
    assert.match((await page.locator('#bar-2').getAttribute('class'))!, /k-error/);
    assert.doesNotMatch((await page.locator('#bar-1').getAttribute('class'))!, /k-error/);
    for (const bar of ['#bar-1', '#bar-2']) {
      const box = await page.locator(bar).boundingBox();
      assert.ok(box && box.width >= 2 && box.height > 0, `${bar} is drawn`);
    }
    const track = (await page.locator('#step-2 .track').boundingBox())!;
    const bar2 = (await page.locator('#bar-2').boundingBox())!;
    assert.ok(bar2.x >= track.x && bar2.x + bar2.width <= track.x + track.width + 1, 'the bar lies inside its track');
    assert.match((await page.locator('[data-error]').textContent())!, /payments down/);
    await page.click('#step-2 summary');
    assert.ok(await page.locator('#step-2 .err-title').isVisible());
    await screenshot(page, `dashboard-${target.kind}-workflow-error`);

    // Retry from the page: confirmed, then the workflow runs again and succeeds.
    fixture.up = true;
    await Promise.all([page.waitForURL(/\/workflows\/c-failed\?done=retried$/), page.click('form[action$="/c-failed/retry"] button')]);
    assert.match(page.dialogs.at(-1) ?? '', /^Retry workflow c-failed\?/);
    await page.locator('[data-fact=status] .badge', { hasText: 'SUCCESS' }).waitFor({ timeout: 30_000 });
    assert.deepEqual((await engine.getWorkflow('c-failed')).output, { paid: 5 });
    assert.doesNotMatch((await page.locator('#bar-2').getAttribute('class'))!, /k-error/);
    assert.equal(await page.locator('form[action$="/retry"]').count(), 0, 'a finished workflow offers no retry');

    // Cancel a workflow parked in ctx.recv: the page says what it waits on, then shows it CANCELLED.
    await page.goto(`${origin}/workflows/a-parked`);
    assert.match((await page.locator('[data-waiting]').textContent())!, /Waiting for a message \(ctx\.recv\) at step 1/);
    assert.equal(await page.locator('.tl-row[data-parked][data-kind=recv]').count(), 1);
    await Promise.all([page.waitForURL(/done=cancelled$/), page.click('form[action$="/a-parked/cancel"] button')]);
    assert.match(page.dialogs.at(-1) ?? '', /^Cancel workflow a-parked/);
    assert.equal(await page.locator('[data-fact=status] .badge').textContent(), 'CANCELLED');
    assert.equal((await engine.getWorkflow('a-parked')).status, 'CANCELLED');
    await screenshot(page, `dashboard-${target.kind}-cancelled`);

    // Live refresh: a change made elsewhere shows up without reloading the page.
    await page.goto(`${origin}/workflows/a-live`);
    assert.ok(await page.locator('#live').isChecked(), 'live refresh starts on for an unfinished workflow');
    const loads = await page.evaluate<number>("performance.getEntriesByType('navigation').length");
    await engine.send('a-live', 'approved', 'go');
    await page.locator('[data-fact=status] .badge', { hasText: 'SUCCESS' }).waitFor({ timeout: 30_000 });
    assert.ok(await page.evaluate<string | undefined>('document.body.dataset.refreshed'), 'the live region was fetched again');
    assert.equal(await page.evaluate<number>("performance.getEntriesByType('navigation').length"), loads, 'without a reload');
    assert.equal(await page.locator('.tl-row[data-kind=recv]:not([data-parked])').count(), 1);
    assert.deepEqual(page.errors, [], 'no script error and no CSP violation');
  });

  test('in a browser: read-only shows no action, and stored markup is shown as text', { skip, timeout: 120_000 }, async (t) => {
    t.after(closeBrowser);
    const store = await target.fresh();
    const engine = await target.open(store, { executorId: 'dash', appVersion: 'v1' });
    const fixture = { up: false };
    const { charge, approval, evil } = register(engine, fixture);
    await assert.rejects(charge.run(5, { id: 'c-failed' }), /payments down/);
    await approval.start(undefined, { id: 'a-parked' });
    const evilId = `x${EVIL}"'&`;
    await evil.run(undefined, { id: evilId });
    const readOnly = await listen(dashboardHandler({ client: engine, basePath: '/', readOnly: true }));
    const page = await (await open()).page();

    for (const id of ['c-failed', 'a-parked']) {
      await page.goto(`${readOnly}/workflows/${id}`);
      assert.equal(await page.locator('form[method=post]').count(), 0, `no action form on ${id}`);
      assert.equal(await page.locator('main button').count(), 0, `no button on ${id}`);
      assert.equal(await page.locator('header .ro').textContent(), 'read-only');
    }
    await screenshot(page, `dashboard-${target.kind}-read-only`);

    await page.goto(`${readOnly}/workflows`);
    assert.ok(await page.getByText(EVIL, { exact: true }).first().isVisible(), 'the markup name is visible as text');
    await Promise.all([page.waitForURL(/\/workflows\/x%3Cimg/), page.click(`tr[data-id="${evilId.replace(/["\\]/g, '\\$&')}"] a.id`)]);
    assert.equal(await page.locator('h1 .id').textContent(), evilId);
    assert.equal(await page.locator('[data-step="1"] .tl-name b').textContent(), `step${EVIL}`);
    await page.click('#step-1 summary');
    assert.match((await page.locator('#step-1 pre.json').textContent())!, /"note": "<img src=x onerror=alert\(1\)>"/);
    assert.ok(await page.getByText(EVIL, { exact: true }).first().isVisible());
    await page.waitForTimeout(300);
    assert.equal(await page.locator('img').count(), 0, 'no img element was created from stored text');
    assert.deepEqual(page.dialogs, [], 'no dialog fired');
    assert.deepEqual(page.errors, []);
    await screenshot(page, `dashboard-${target.kind}-markup-as-text`);
  });

  test('in a browser: the workflow page of a checkout with a retried step, a sleep and a child', { skip, timeout: 120_000 }, async (t) => {
    t.after(closeBrowser);
    const store = await target.fresh();
    const engine = await target.open(store, { executorId: 'web-1', appVersion: '2026.01.3' });
    let declines = 1;
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const notify = engine.workflow('send_receipt', async (ctx: Context, to: string) => ctx.step('email', async () => (await pause(30), { to, sent: true })));
    const checkout = engine.workflow('checkout', async (ctx: Context, order: { id: string; cents: number; email: string }) => {
      await ctx.step('validate_cart', async () => (await pause(20), { items: 2 }));
      await ctx.step('reserve_inventory', async () => (await pause(90), { sku: 'TENT-2P', warehouse: 'north' }));
      const charge = await ctx.step(
        'charge_card',
        async () => {
          await pause(60);
          if (declines-- > 0) throw Object.assign(new Error('card issuer timed out'), { code: 'ISSUER_TIMEOUT' });
          return { chargeId: 'ch_3PzL9', cents: order.cents };
        },
        { retry: { maxAttempts: 3, minDelayMs: 120 } },
      );
      await ctx.sleep(400);
      await ctx.runChild(notify, order.email);
      await ctx.step('mark_shipped', async () => (await pause(15), 'shipped'));
      return { order: order.id, charge: charge.chargeId, status: 'shipped' };
    });
    await checkout.run({ id: 'A-1042', cents: 24_900, email: 'ada@example.com' }, { id: 'order-A-1042' });
    const origin = await listen(dashboardHandler({ client: engine, basePath: '/' }));
    const page = await (await open()).page();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${origin}/workflows/order-A-1042`);
    assert.deepEqual(await attrs(page.locator('.tl-row'), 'data-kind'), ['step', 'step', 'step', 'sleep', 'child', 'child', 'step']);
    assert.equal(await page.locator('#step-3 .tries').textContent(), '2 attempts');
    assert.match((await page.locator('#bar-4').getAttribute('class'))!, /k-wait/);
    const sleepBar = (await page.locator('#bar-4').boundingBox())!;
    const stepBar = (await page.locator('#bar-1').boundingBox())!;
    assert.ok(sleepBar.width > stepBar.width * 3, 'the sleep is drawn for its whole length');
    assert.equal(await page.locator('#step-5 .tl-name small').textContent(), 'started order-A-1042-5');
    await page.click('#step-3 summary');
    await screenshot(page, `dashboard-${target.kind}-checkout`);
    if (process.env.CAIRN_DOCS_SCREENSHOT === '1' && target.kind === 'sqlite') await screenshot(page, 'docs', DOCS_SCREENSHOT);
    await page.click('#step-5 summary');
    await Promise.all([page.waitForURL(/order-A-1042-5$/), page.click('#step-5 .tl-body a.id')]);
    assert.equal(await page.locator('[data-fact=status] .badge').textContent(), 'SUCCESS');
    assert.equal(await page.locator('[data-fact=parent] a').textContent(), 'order-A-1042');
    assert.deepEqual(page.errors, []);
  });
}
