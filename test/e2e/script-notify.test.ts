/**
 * Script checks and notifications in `switchboard all`, as a user sets them up: a config file
 * with a webhook, `--enable-script-checks=true`, an instance registered with the npm consul
 * client whose check is a script. The script's exit status drives the instance's health, the
 * proxy's rotation, and exactly one message per state change to the webhook.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { SwitchboardProcess, waitFor } from '../helpers/switchboard-process';
import { WebhookReceiver } from '../helpers/webhook-receiver';

describe('script checks and notifications: switchboard all', () => {
  let dir = '';
  let receiver: WebhookReceiver;
  let sb: SwitchboardProcess;
  let consul: Consul;
  const code = (n: number) => writeFileSync(path.join(dir, 'code'), String(n));
  const health = async (): Promise<string> => {
    const entries = (await consul.health.service({ service: 'db' })) as Array<{ Checks: Array<{ Status: string }> }>;
    return entries[0]?.Checks[0]?.Status ?? 'none';
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-script-e2e-'));
    receiver = await WebhookReceiver.start();
    const script = path.join(dir, 'check-db');
    writeFileSync(script, `#!/bin/sh\necho "exit code $(cat ${dir}/code)"\nexit $(cat ${dir}/code)\n`);
    chmodSync(script, 0o755);
    code(0);
    const config = path.join(dir, 'switchboard.yaml');
    writeFileSync(config, `notify:\n  holdDown: 200ms\n  webhooks:\n    - name: ops\n      url: ${receiver.url}\n      secret: s3cret\n      events: [instance-critical, instance-recovered, service-down, service-up]\n`);
    sb = await SwitchboardProcess.start({ args: ['--config', config, '--enable-script-checks=true'] });
    consul = new Consul(sb.apiEndpoint());
    await consul.agent.service.register({ name: 'db', id: 'db-1', address: '127.0.0.1', port: 5432, check: { args: [script], interval: '1s', timeout: '1s' } as never });
  });

  after(async () => {
    consul?.destroy();
    await sb?.cleanup();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exit 0 → passing, 1 → warning, 2 → critical (told), 0 → passing (told): one message per change, signed', async () => {
    await waitFor('the script check to pass', async () => (await health()) === 'passing', 10_000);
    code(1);
    await waitFor('warning', async () => (await health()) === 'warning', 10_000);
    code(2);
    await waitFor('critical', async () => (await health()) === 'critical', 10_000);
    await waitFor('the critical and service-down messages', () => receiver.received.length >= 2, 10_000);
    code(0);
    await waitFor('recovered and service-up messages', () => receiver.received.length >= 4, 10_000);
    // Queued in order: a duplicate of an earlier message would have come before these.
    assert.deepEqual(receiver.events().sort(), ['instance-critical db-1', 'instance-recovered db-1', 'service-down db', 'service-up db']);
    const critical = receiver.received.find((r) => r.body.event === 'instance-critical');
    assert.match(JSON.stringify(critical?.body), /exit code 2/, 'the check output travels with the message');
    for (const r of receiver.received) assert.equal(r.headers['x-switchboard-signature'], `sha256=${createHmac('sha256', 's3cret').update(r.raw).digest('hex')}`);
  });
});
