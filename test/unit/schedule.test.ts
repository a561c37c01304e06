import { describe, expect, it } from 'vitest';
import { numTransferTokens, planBlocks } from '../../lib/schedule';

// Worked examples of design/notes/masked_dlm.md §1.1 (LLaDA get_num_transfer_tokens).
describe('numTransferTokens', () => {
  it('front-loads the remainder: 30 masks over 8 steps', () => {
    expect(numTransferTokens(30, 8)).toEqual([4, 4, 4, 4, 4, 4, 3, 3]);
  });

  it('32 masks over 32 steps commits one per step', () => {
    expect(numTransferTokens(32, 32)).toEqual(new Array(32).fill(1));
  });

  it('32 masks over 16 steps commits two per step', () => {
    expect(numTransferTokens(32, 16)).toEqual(new Array(16).fill(2));
  });

  it('more steps than masks leaves zero-commit steps at the end', () => {
    expect(numTransferTokens(3, 5)).toEqual([1, 1, 1, 0, 0]);
  });

  it('always sums to the masks', () => {
    for (const [m, s] of [
      [128, 7],
      [1, 1],
      [0, 4],
      [1000, 33],
    ] as const) {
      expect(numTransferTokens(m, s).reduce((a, b) => a + b, 0)).toBe(m);
    }
  });

  it('rejects bad input', () => {
    expect(() => numTransferTokens(-1, 4)).toThrow(RangeError);
    expect(() => numTransferTokens(4, 0)).toThrow(RangeError);
  });
});

describe('planBlocks', () => {
  it('G = 128, block 32, steps 128 → 4 blocks × 32 steps × 1 token', () => {
    const plan = planBlocks(128, 32, 128, 10);
    expect(plan.stepsPerBlock).toBe(32);
    expect(plan.totalSteps).toBe(128);
    expect(plan.blocks.map((b) => [b.index, b.start, b.end])).toEqual([
      [0, 10, 42],
      [1, 42, 74],
      [2, 74, 106],
      [3, 106, 138],
    ]);
    for (const b of plan.blocks) expect(b.transfer).toEqual(new Array(32).fill(1));
  });

  it('one block by default shape (block = gen length)', () => {
    const plan = planBlocks(30, 30, 8);
    expect(plan.blocks).toHaveLength(1);
    expect(plan.blocks[0]?.transfer).toEqual([4, 4, 4, 4, 4, 4, 3, 3]);
  });

  it('rejects shapes the options validation would reject', () => {
    expect(() => planBlocks(128, 48, 128)).toThrow(RangeError);
    expect(() => planBlocks(128, 32, 30)).toThrow(RangeError);
  });
});
