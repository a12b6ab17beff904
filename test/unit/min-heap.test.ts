import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MinHeap } from '../../src/registry/min-heap';

describe('MinHeap', () => {
  it('pops in key order whatever the push order, duplicates included', () => {
    const heap = new MinHeap<number>((n) => n);
    const input = [5, 3, 9, 1, 3, 8, 2, 7, 1, 6, 0, 4];
    for (const n of input) heap.push(n);
    assert.equal(heap.size, input.length);
    assert.equal(heap.peek(), 0);
    const out: number[] = [];
    for (let n = heap.pop(); n !== undefined; n = heap.pop()) out.push(n);
    assert.deepEqual(out, [...input].sort((a, b) => a - b));
    assert.equal(heap.size, 0);
  });

  it('stays ordered when pushes and pops interleave', () => {
    const heap = new MinHeap<{ at: number }>((e) => e.at);
    const reference: number[] = [];
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      if (next() % 3 === 0 && reference.length > 0) {
        reference.sort((a, b) => a - b);
        assert.equal(heap.pop()?.at, reference.shift());
      } else {
        const at = next() % 500;
        heap.push({ at });
        reference.push(at);
      }
    }
    assert.equal(heap.size, reference.length);
  });

  it('clear() empties it', () => {
    const heap = new MinHeap<number>((n) => n);
    heap.push(1);
    heap.clear();
    assert.equal(heap.peek(), undefined);
    assert.equal(heap.pop(), undefined);
  });
});
