import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { requireProgram } from './system-programs';
import { REPO } from './test-kit';

/** Where the browser tests leave their screenshots (git-ignored): look at them. */
export const ARTIFACTS = join(REPO, 'test-artifacts', 'explorer');

/** Bundles web/explorer into dist/explorer, as `npm run build` does, so a test never runs an old page. */
export function buildExplorer(): void {
  const built = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-explorer.mjs')], { encoding: 'utf8', timeout: 60_000 });
  if (built.status !== 0) throw new Error(`scripts/build-explorer.mjs failed: ${built.stderr}`);
}

export interface Browser {
  context: BrowserContext;
  /** A new tab (its own sessionStorage) whose console errors, page errors and CSP violations are collected in `problems`. */
  newPage(): Promise<TestPage>;
  close(): Promise<void>;
}

export interface TestPage {
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations, as text. */
  problems: string[];
  /** Every URL the page requested. */
  urls: string[];
  screenshot(name: string): Promise<string>;
}

/**
 * Debian's chromium (installed by `npm run setup:system`, never downloaded), headless,
 * driven by playwright-core, with a fresh profile that is deleted on close.
 */
export async function startBrowser(): Promise<Browser> {
  requireProgram('chromium');
  const profile = mkdtempSync(join(tmpdir(), 'explorer-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    // Far from UTC: the page must read and show times as UTC whatever the browser's zone.
    timezoneId: 'Asia/Kolkata',
    locale: 'en-GB',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    async newPage() {
      const page = await context.newPage();
      const problems: string[] = [];
      const urls: string[] = [];
      page.on('console', (m: ConsoleMessage) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (r) => urls.push(r.url()));
      // A CSP violation is also reported as a console error; this names the directive.
      await page.addInitScript(
        "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))",
      );
      return {
        page,
        problems,
        urls,
        async screenshot(name: string) {
          const path = join(ARTIFACTS, `${name}.png`);
          await page.screenshot({ path, fullPage: true });
          return path;
        },
      };
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
