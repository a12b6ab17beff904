/**
 * A reload changes the level of every long-lived logger of a family. A request's child (fastify
 * makes one per request) is left out of the family: made without a level of its own, it reads
 * its parent's through the prototype, during a reload too.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, requestChild, setLogLevel } from '../../src/log';

const sink = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

describe('logger families', () => {
  it('setLogLevel reaches the root and every component child, made before or after', () => {
    const root = createLogger('info', sink());
    const component = root.child({ component: 'registry' });
    const grandchild = component.child({ sub: 'x' });
    setLogLevel(component, 'debug');
    assert.equal(root.level, 'debug');
    assert.equal(component.level, 'debug');
    assert.equal(grandchild.level, 'debug');
    assert.equal(root.child({ component: 'later' }).level, 'debug');
  });

  it('a request child, untracked, still follows a reload through its parent', () => {
    const root = createLogger('info', sink());
    const api = root.child({ component: 'registry-api' });
    const duringRequest = requestChild(api, { reqId: 'req-1' });
    assert.equal(duringRequest.level, 'info');
    setLogLevel(root, 'warn');
    assert.equal(api.level, 'warn');
    assert.equal(duringRequest.level, 'warn');
    assert.equal(duringRequest.isLevelEnabled('info'), false);
    assert.equal(requestChild(api, { reqId: 'req-2' }).level, 'warn');
    // Tracking resumes for ordinary children after a request child.
    const after = api.child({ component: 'x' });
    setLogLevel(root, 'error');
    assert.equal(after.level, 'error');
  });
});
