import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * A real Chromium for the dashboard's browser tests: Debian's build, driven by playwright-core
 * (which downloads no browser), in a fresh profile each time. Without one the tests are skipped,
 * loudly; under CI=true that is a failure.
 */

/** Where the tests leave their screenshots (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

const CANDIDATES = [process.env.CAIRN_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);

export const CHROMIUM = CANDIDATES.find((p) => existsSync(p));

/** A reason to skip the browser tests, or false. */
export const browserSkip: string | false = (() => {
  if (CHROMIUM) return false;
  const reason = `no Chromium found (looked at ${CANDIDATES.join(', ')}); install it with 'apt-get install chromium' or set CAIRN_CHROMIUM`;
  if (process.env.CI) throw new Error(`${reason}. CI must not skip the dashboard's browser tests.`);
  process.stderr.write(`\n*** dashboard browser tests SKIPPED: ${reason}\n\n`);
  return reason;
})();

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  /** A new tab that records the dialogs it opens (and accepts them) and fails on page errors. */
  page(): Promise<Page & { dialogs: string[]; errors: string[] }>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'cairn-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM!,
      headless: true,
      args: ARGS,
      viewport: { width: 1360, height: 900 },
      timeout: 60_000,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    async page() {
      const page = (await context.newPage()) as Page & { dialogs: string[]; errors: string[] };
      page.dialogs = [];
      page.errors = [];
      page.setDefaultTimeout(20_000);
      page.on('dialog', (d) => {
        page.dialogs.push(d.message());
        void d.accept();
      });
      page.on('pageerror', (e) => page.errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') page.errors.push(m.text());
      });
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as a test artefact; returns its path. */
export async function screenshot(page: Page, name: string, path = join(ARTIFACTS, `${name}.png`)): Promise<string> {
  await page.screenshot({ path, fullPage: true });
  return path;
}
