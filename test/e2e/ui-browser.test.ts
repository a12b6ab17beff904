/**
 * The web UI in a real headless Chromium (Debian `chromium`, driven by puppeteer-core),
 * against `switchboard all`: a registered service is listed; one registered with the npm
 * `consul` client appears without a reload; a failed check turns its instance critical; an
 * instance killed under light load is shown ejected with the reason; an instance is
 * deregistered from the UI. Screenshots of each page are written to a temp dir (logged).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { Backend } from '../helpers/backend';
import { makeTempDir } from '../helpers/child';
import { SwitchboardProcess, request, waitFor } from '../helpers/switchboard-process';

const TIMEOUT = { timeout: 120_000 };
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

describe('web UI in headless Chromium', TIMEOUT, () => {
  const shots = makeTempDir('ui-screenshots');
  let sb: SwitchboardProcess;
  let browser: Browser;
  let page: Page;
  let consul: Consul;
  let web: Backend[];
  let load: { stop: boolean; done: Promise<void> } | undefined;

  const register = (body: object): Promise<unknown> => request(sb.url('api', '/v1/agent/service/register'), { method: 'PUT', body: JSON.stringify(body) });
  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };

  before(async () => {
    sb = await SwitchboardProcess.start();
    web = await Backend.startMany('web', 2);
    const [host, port] = (sb.addresses.api as string).split(':');
    consul = new Consul({ host, port: Number(port) });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1300, height: 900 });
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    if (load !== undefined) {
      load.stop = true;
      await load.done;
    }
    await browser?.close();
    consul?.destroy();
    await sb?.cleanup();
    for (const b of web ?? []) await b.close().catch(() => undefined);
  });

  it('lists a registered service, and one registered with the consul client appears without a reload', TIMEOUT, async (t) => {
    await register({ Name: 'web', ID: 'web-0', Address: '127.0.0.1', Port: web[0].port, Tags: ['v1'] });
    await page.goto(sb.url('api', '/ui/'), { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('tr[data-service="web"]', { timeout: 10_000 });
    await consul.agent.service.register({ name: 'billing', id: 'billing-1', address: '127.0.0.1', port: 9 });
    // Same page, no navigation: the stream tells it the catalog changed.
    await page.waitForSelector('tr[data-service="billing"]', { timeout: 5_000 });
    await shot('services');
    t.diagnostic(`screenshots in ${shots}`);
  });

  it('a failed check turns its instance critical on the service page', TIMEOUT, async () => {
    await register({ Name: 'web', ID: 'web-1', Address: '127.0.0.1', Port: web[1].port, Check: { CheckID: 'web-1-ttl', TTL: '60s', Status: 'passing' } });
    await page.goto(sb.url('api', '/ui/#/service/web'), { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('[data-instance="web-1"] h3 [data-state="passing"]', { timeout: 10_000 });
    await request(sb.url('api', '/v1/agent/check/fail/web-1-ttl?note=disk%20full'), { method: 'PUT' });
    await page.waitForSelector('[data-instance="web-1"] h3 [data-state="critical"]', { timeout: 5_000 });
    const explain = await page.$eval('[data-instance="web-1"] [data-explain]', (el) => el.textContent ?? '');
    assert.match(explain, /^critical: .*disk full/);
    await request(sb.url('api', '/v1/agent/check/pass/web-1-ttl'), { method: 'PUT' });
    await page.waitForSelector('[data-instance="web-1"] h3 [data-state="passing"]', { timeout: 5_000 });
  });

  it('an instance killed under light load is shown ejected, with the reason', TIMEOUT, async () => {
    // Light load through the proxy: a request every 20 ms.
    const state = { stop: false, done: Promise.resolve() };
    state.done = (async () => {
      while (!state.stop) {
        await request(sb.url('proxy', '/load'), { headers: { host: 'web.svc' } }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    load = state;
    // (The page's own code, as text: this file is compiled without the DOM's types.)
    await page.waitForFunction("document.querySelectorAll('[data-instance] table.proxies tbody tr').length >= 2", { timeout: 10_000 });
    await web[1].close();
    await page.waitForSelector('[data-instance="web-1"] h3 [data-state="ejected"]', { timeout: 15_000 });
    const explain = await page.$eval('[data-instance="web-1"] [data-explain]', (el) => el.textContent ?? '');
    assert.match(explain, /^ejected by every proxy: consecutive gateway failure, back in \d+ s$/);
    await shot('service');
    await page.goto(sb.url('api', '/ui/#/cluster'), { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('tr[data-kind="ejected"]', { timeout: 5_000 });
    assert.match(await page.$eval('#store', (el) => el.textContent ?? ''), /Store \(embedded\) healthy/);
    assert.match(await page.$eval('#bus', (el) => el.textContent ?? ''), /in-process/);
    await shot('cluster');
  });

  it('deregisters an instance from the UI', TIMEOUT, async () => {
    await page.goto(sb.url('api', '/ui/#/service/web'), { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('[data-instance="web-1"] .act-deregister', { timeout: 10_000 });
    await page.click('[data-instance="web-1"] .act-deregister');
    await page.waitForFunction('document.querySelector(\'[data-instance="web-1"]\') === null', { timeout: 5_000 });
    await waitFor('the registry to have dropped web-1', async () => !('web-1' in ((await consul.agent.service.list()) as object)), 5_000);
  });
});
