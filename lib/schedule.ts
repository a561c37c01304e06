/**
 * LLaDA's schedule, in plain TypeScript: how many tokens each step commits, and the block plan.
 * The native loop computes the same numbers itself; this copy documents them and is unit-tested
 * against the worked examples of the design notes (masked_dlm.md §1.1).
 */

/**
 * LLaDA `get_num_transfer_tokens`: spread `masked` commits over `steps` steps as evenly as
 * possible, the remainder going to the first steps. `(30, 8)` → `[4,4,4,4,4,4,3,3]`.
 * With more steps than masks, the last steps commit nothing.
 */
export function numTransferTokens(masked: number, steps: number): number[] {
  if (!Number.isSafeInteger(masked) || masked < 0) throw new RangeError('masked must be >= 0');
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError('steps must be >= 1');
  const base = Math.floor(masked / steps);
  const rem = masked % steps;
  return Array.from({ length: steps }, (_, t) => base + (t < rem ? 1 : 0));
}

/** One block of the plan. */
export interface PlannedBlock {
  index: number;
  /** First canvas position of the block (prompt positions come first). */
  start: number;
  /** One past the last canvas position of the block. */
  end: number;
  /** Tokens to commit at each of the block's steps. */
  transfer: number[];
}

export interface BlockPlan {
  blocks: PlannedBlock[];
  stepsPerBlock: number;
  totalSteps: number;
}

/**
 * Blocks of `blockLength` positions after a prompt of `promptLength`, each denoised in
 * `steps / (genLength / blockLength)` steps. The caller has validated divisibility.
 */
export function planBlocks(
  genLength: number,
  blockLength: number,
  steps: number,
  promptLength = 0,
): BlockPlan {
  const nBlocks = genLength / blockLength;
  if (!Number.isInteger(nBlocks) || steps % nBlocks !== 0) {
    throw new RangeError('blockLength must divide genLength and blocks must divide steps');
  }
  const stepsPerBlock = steps / nBlocks;
  const transfer = numTransferTokens(blockLength, stepsPerBlock);
  const blocks = Array.from({ length: nBlocks }, (_, b) => ({
    index: b,
    start: promptLength + b * blockLength,
    end: promptLength + (b + 1) * blockLength,
    transfer: [...transfer],
  }));
  return { blocks, stepsPerBlock, totalSteps: steps };
}
