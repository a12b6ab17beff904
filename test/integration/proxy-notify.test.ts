/**
 * A proxy tells the webhooks that want `instance-ejected` when its outlier detection ejects an
 * instance: once per ejection, with the reason and which proxy it was.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProxyHarness, send, waitFor } from '../helpers/proxy-harness';
import { Backend } from '../helpers/backend';
import { WebhookReceiver } from '../helpers/webhook-receiver';

describe('proxy: ejection notifications', () => {
  let harness: ProxyHarness;
  let receiver: WebhookReceiver;
  let backends: Backend[];

  before(async () => {
    receiver = await WebhookReceiver.start();
    backends = await Backend.startMany('ej', 3);
    harness = await ProxyHarness.start({ notify: { webhooks: [{ url: receiver.url, events: ['instance-ejected'] }] } });
    await harness.serveFrom('ejecting', backends);
  });

  after(async () => {
    await harness.stop();
    await Promise.all(backends.map((b) => b.close()));
    await receiver.close();
  });

  it('an instance answering 500 is ejected, and the webhook hears it once', async () => {
    backends[1].behaviour = 500;
    for (let i = 0; i < 30 && !harness.upstream('ejecting', 'ej-1').ejected; i++) await send(harness, 'ejecting', `/x${i}`);
    assert.equal(harness.upstream('ejecting', 'ej-1').ejected, true);
    await waitFor('the ejection notification', () => receiver.received.length === 1, 5_000);
    const message = receiver.received[0].body as unknown as { event: string; service: string; instance: { id: string }; reason: string; proxy: string };
    assert.equal(message.event, 'instance-ejected');
    assert.equal(message.service, 'ejecting');
    assert.equal(message.instance.id, 'ej-1');
    assert.equal(message.reason, 'consecutive_5xx');
    assert.equal(message.proxy, harness.proxy.address);
  });
});
