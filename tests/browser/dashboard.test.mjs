// dashboard.test.mjs: drives the `jobmgr serve` dashboard in a real browser
// (Debian's Chromium through playwright-core) against a seeded jobs database,
// and checks what it shows and does against the CLI's view of that database.
//
//   JM_DASH_URL=http://127.0.0.1:PORT JM_DASH_TOKEN=T JM_DASH_DB=jobs.db \
//   JM_CLI=build/tools/jobmgr [JM_DASH_SCREENSHOT=overview.png] node dashboard.test.mjs
//
// scripts/checks/dashboard_browser.sh seeds the database, starts the server
// and runs this. Each step prints "ok - NAME"; the first failure prints
// "not ok - NAME: why" and exits 1. Every wait polls a condition (15 s).
import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';

const TIMEOUT_MS = 15000;
const POLL_MS = 100;
const HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>';
const STATUSES = ['new', 'queued', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'paused'];

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`dashboard.test: ${name} is not set (see the comment at the top of this file)`);
    process.exit(2);
  }
  return v;
}

const BASE = need('JM_DASH_URL').replace(/\/+$/, '');
const TOKEN = need('JM_DASH_TOKEN');
const DB = need('JM_DASH_DB');
const CLI = need('JM_CLI');
const SCREENSHOT = process.env.JM_DASH_SCREENSHOT || '';

// ---- helpers ------------------------------------------------------------------

// Runs `jobmgr --db DB --json ARGS...` and resolves to its parsed output.
function cli(...args) {
  return new Promise((resolve, reject) => {
    execFile(CLI, ['--db', DB, '--json', ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`jobmgr ${args.join(' ')} failed (exit ${err.code}): ${stderr.trim()}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

// Polls fn until it returns a truthy value, which it resolves to; fails
// naming `what` and the last value seen.
async function waitFor(what, fn) {
  const deadline = Date.now() + TIMEOUT_MS;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${TIMEOUT_MS / 1000}s waiting for ${what} (last seen: ${JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const tid = (id) => `[data-testid="${id}"]`;
const text = (page, sel) => page.locator(sel).first().textContent({ timeout: TIMEOUT_MS });

// Loads the page afresh at a route (a change of the fragment alone would
// leave the last view on screen for a moment), waiting for its script.
async function open(page, fragment) {
  await page.goto('about:blank');
  await page.goto(`${BASE}/${fragment}`);
  await page.waitForSelector(tid('nav-overview'), { timeout: TIMEOUT_MS });
}

// The text of each job row's type and status cells.
function rows(page) {
  return page.$$eval(tid('job-row'), (trs) => trs.map((tr) => ({
    id: tr.dataset.id,
    type: tr.querySelector('[data-testid="row-type"]')?.textContent,
    status: tr.querySelector('[data-testid="row-status"]')?.textContent,
  })));
}

// fetch() from inside a page, so that the request carries that page's
// origin and cookies (or none).
function pageFetch(page, path, headers) {
  return page.evaluate(async ([url, hdrs]) => {
    const res = await fetch(url, { method: 'POST', credentials: 'same-origin', headers: hdrs, body: '{}' });
    return { status: res.status, body: await res.text() };
  }, [`${BASE}${path}`, headers]);
}

// ---- steps --------------------------------------------------------------------

async function overviewShowsSeededJobs({ page }) {
  const stats = await cli('stats');
  const total = STATUSES.reduce((n, st) => n + (stats.by_status[st] || 0), 0);
  check(total > 0, 'the database has no jobs: the seeding went wrong');
  await open(page, '#/');
  for (const st of STATUSES) {
    const want = String(stats.by_status[st] || 0);
    await waitFor(`count-${st} to show ${want} (jobmgr stats)`,
      async () => (await page.$eval(tid(`count-${st}`), (el) => el.textContent).catch(() => null)) === want);
  }
  await page.waitForSelector(tid('throughput-chart'), { timeout: TIMEOUT_MS });
  const running = (await cli('list', '--status', 'running', '--limit', '1000')).jobs;
  await waitFor(`${running.length} running job(s) with a progress bar each`, async () => {
    const shown = await page.$$eval(`${tid('running-job')} progress`, (ps) => ps.map((p) => p.value).sort());
    const want = running.map((j) => j.progress).sort();
    return shown.length === want.length && shown.every((v, i) => Math.abs(v - want[i]) < 1e-9);
  });
  await waitFor('"updated HH:MM:SS"', async () => /^updated \d\d:\d\d:\d\d$/.test(await text(page, tid('updated'))));
}

async function filterNarrowsTheList({ page }) {
  await open(page, '#/jobs?limit=1000');
  const all = await waitFor('the unfiltered job list', async () => {
    const r = await rows(page);
    return r.length ? r : null;
  });
  const want = (await cli('list', '--type', 'FL', '--status', 'queued', '--limit', '1000')).jobs.map((j) => j.id);
  check(want.length > 0, 'the seeding made no queued FL job');
  check(want.length < all.length, `the unfiltered list shows ${all.length} jobs, no more than the ${want.length} queued FL`);

  await page.fill(tid('filter-type'), 'FL');
  await page.check(tid('filter-status-queued'));
  await page.click(tid('filter-apply'));
  await waitFor('the hash to carry the filters', () => page.evaluate(() =>
    location.hash.includes('type=FL') && location.hash.includes('status=queued')));
  const shown = await waitFor(`exactly the ${want.length} queued FL jobs`, async () => {
    const r = await rows(page);
    return r.length === want.length && r.every((x) => want.includes(x.id)) ? r : null;
  });
  for (const r of shown) check(r.type === 'FL' && r.status === 'queued', `row ${r.id} shows ${r.type} ${r.status}`);

  // The filter survives a reload: it lives in the URL.
  await page.reload();
  await waitFor('the filtered list after a reload', async () => (await rows(page)).length === want.length);
  check(await page.isChecked(tid('filter-status-queued')), 'the status box is unchecked after a reload');
  check(await page.inputValue(tid('filter-type')) === 'FL', 'the type field is empty after a reload');
}

async function signInAndCancel({ page }) {
  const queued = (await cli('list', '--status', 'queued', '--limit', '1000')).jobs;
  check(queued.length > 0, 'no queued job to cancel');
  const id = queued[0].id;

  await open(page, '#/');
  await page.waitForSelector(tid('signin-token'), { state: 'visible', timeout: TIMEOUT_MS });
  await page.fill(tid('signin-token'), TOKEN);
  await page.click(tid('signin-submit'));
  await page.waitForSelector(tid('signin'), { state: 'hidden', timeout: TIMEOUT_MS });
  const cookies = await page.context().cookies(BASE);
  check(cookies.some((c) => c.name.startsWith('jm_token_') && c.httpOnly), 'no HttpOnly jm_token_<port> cookie after sign-in');

  await open(page, `#/job/${encodeURIComponent(id)}`);
  await waitFor(`job ${id} shown as queued`, async () => (await text(page, tid('job-status'))) === 'queued');
  await page.click(tid('btn-cancel'));
  await waitFor('the page to show it cancelled', async () => (await text(page, tid('job-status'))) === 'cancelled');
  await waitFor(`jobmgr show ${id} to say cancelled`, async () => (await cli('show', id)).status === 'cancelled');
}

async function hostileMessageIsText({ page }) {
  const jobs = (await cli('list', '--limit', '1000')).jobs;
  const job = jobs.find((j) => (j.message || '').includes(HOSTILE));
  check(job, `no seeded job has a message containing ${HOSTILE}`);
  await page.evaluate(() => { delete window.__xss; });

  await open(page, `#/job/${encodeURIComponent(job.id)}`);
  const shown = await waitFor('the job message', async () => page.$eval(tid('job-message'), (el) => el.textContent));
  check(shown === job.message, `the message reads ${JSON.stringify(shown)}, the database has ${JSON.stringify(job.message)}`);
  const params = await text(page, tid('job-params'));
  check(JSON.stringify(JSON.parse(params)) === JSON.stringify(job.params), `the params <pre> reads ${params}`);
  await open(page, `#/jobs?type=${encodeURIComponent(job.type)}&limit=1000`);
  await waitFor('the job in the list', async () => (await rows(page)).some((r) => r.id === job.id));

  const found = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.scripts].map((x) => x.src || x.textContent),
    xss: typeof window.__xss,
  }));
  check(found.imgs === 0, `${found.imgs} <img> element(s) in the page`);
  check(found.scripts.length === 1 && found.scripts[0].endsWith('/app.js'), `scripts in the page: ${JSON.stringify(found.scripts)}`);
  check(found.xss === 'undefined', 'window.__xss was set: the payload ran');
}

async function postsNeedTokenAndCsrf({ page, browser }) {
  const queued = (await cli('list', '--status', 'queued', '--limit', '1000')).jobs;
  check(queued.length > 0, 'no queued job left to try to cancel');
  const id = queued[0].id;
  const path = `/api/jobs/${encodeURIComponent(id)}/cancel`;
  const json = { 'Content-Type': 'application/json' };

  const fresh = await browser.newContext();
  try {
    const anon = await fresh.newPage();
    await anon.goto(`${BASE}/`);
    const csrf = await anon.$eval('meta[name="csrf-token"]', (m) => m.content);
    const r = await pageFetch(anon, path, { ...json, 'X-CSRF-Token': csrf });
    check(r.status === 401, `POST ${path} without a credential answered ${r.status} ${r.body}, want 401`);
  } finally {
    await fresh.close();
  }
  check((await cli('show', id)).status === 'queued', `${id} changed after the refused POST`);

  await open(page, '#/');
  const r = await pageFetch(page, path, json);
  check(r.status === 403, `POST ${path} with the cookie but no X-CSRF-Token answered ${r.status} ${r.body}, want 403`);
  const wrong = await pageFetch(page, path, { ...json, 'X-CSRF-Token': 'not-the-token' });
  check(wrong.status === 403, `POST ${path} with a wrong X-CSRF-Token answered ${wrong.status} ${wrong.body}, want 403`);
  check((await cli('show', id)).status === 'queued', `${id} changed after a POST without CSRF`);
}

async function createFormReportsValidation({ page }) {
  await open(page, '#/new');
  await page.selectOption(tid('new-type'), 'FL');
  await page.fill(tid('new-params'), '{"namespace_id": "app"}');
  await page.click(tid('new-submit'));
  const msg = await waitFor('the server\'s refusal next to the form', async () => (await text(page, tid('form-error'))) || null);
  check(/table_name/.test(msg), `the form error "${msg}" does not name the missing field table_name`);

  await page.fill(tid('new-params'), '{"namespace_id": "app", "table_name": "orders", "table_type": "User"}');
  await page.fill(tid('new-namespace'), 'from-browser');
  await page.click(tid('new-submit'));
  const id = await waitFor('the new job\'s page', async () => {
    const m = /^#\/job\/(.+)$/.exec(await page.evaluate(() => location.hash));
    return m ? decodeURIComponent(m[1]) : null;
  });
  const job = await cli('show', id);
  check(job.type === 'FL' && job.namespace === 'from-browser', `the job created is ${job.type} in ${job.namespace}`);
}

async function screenshot({ page }) {
  await open(page, '#/');
  await page.waitForSelector(tid('throughput-chart'), { timeout: TIMEOUT_MS });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
}

// ---- main -----------------------------------------------------------------------

const steps = [
  ['a. the overview shows the seeded jobs (counts equal jobmgr stats)', overviewShowsSeededJobs],
  ['b. filtering by type and status narrows the job list', filterNarrowsTheList],
  ['c. after signing in, Cancel on a queued job cancels it in the database', signInAndCancel],
  ['d. a hostile job message renders as text', hostileMessageIsText],
  ['e. a POST without the token gets 401, without X-CSRF-Token 403', postsNeedTokenAndCsrf],
];
if (SCREENSHOT) steps.push([`f. full-page screenshot of the overview in ${SCREENSHOT}`, screenshot]);
steps.push(['g. the create form shows the executor\'s refusal and creates a job', createFormReportsValidation]);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
let passed = 0;
let failed = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  // Script errors and CSP refusals fail the step in which they happen.
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  for (const [name, fn] of steps) {
    try {
      await fn({ page, browser, context });
      check(!problems.length, problems.join('; '));
      console.log(`ok - ${name}`);
      passed++;
    } catch (e) {
      console.log(`not ok - ${name}: ${e.message}`);
      failed++;
      break;
    }
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
