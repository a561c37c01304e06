/**
 * A JavaScript stand-in for the native addon, honouring lib/native-types.ts: it follows LLaDA's
 * block schedule, commits deterministic tokens, sends one step event per step, polls the cancel
 * flag between steps and rejects with native-style coded errors. Lets the facade be tested
 * without a C++ build.
 */
import { numTransferTokens } from '../../../lib/schedule';
import type {
  NativeBinding,
  NativeGenerateRequest,
  NativeGenerateResult,
  NativeModel,
  NativeModelSpec,
  NativeStepEvent,
} from '../../../lib/native-types';

export function nativeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The token the fake commits at canvas position `pos` (never the mask; EOS at `eosAt`). */
export type TokenRule = (pos: number, req: NativeGenerateRequest) => number;

export const defaultTokenRule: TokenRule = (pos, req) => 65 + ((pos + req.seed) % 26); // A..Z

export interface FakeControls {
  /** Delay per step in ms (0 = setImmediate). */
  stepDelayMs: number;
  tokenRule: TokenRule;
  /** Make the next generate() reject with this error (once). */
  failNext: Error | undefined;
  /** Calls running right now, and the most ever seen at once. */
  running: number;
  maxRunning: number;
  generateCalls: NativeGenerateRequest[];
  disposeCalls: number;
  spec: NativeModelSpec | undefined;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

function commitsFor(
  canvas: Int32Array,
  start: number,
  end: number,
  k: number,
  req: NativeGenerateRequest,
  rule: TokenRule,
): number[] {
  const pairs: number[] = [];
  for (let pos = start; pos < end && pairs.length < 2 * k; pos++) {
    if (canvas[pos] !== req.maskTokenId) continue;
    const token = rule(pos, req);
    canvas[pos] = token;
    pairs.push(pos, token);
  }
  return pairs;
}

class FakeModel implements NativeModel {
  private disposed = false;
  constructor(
    private readonly c: FakeControls,
    private readonly spec: NativeModelSpec,
  ) {}

  async generate(
    req: NativeGenerateRequest,
    onStep: (ev: NativeStepEvent) => void,
  ): Promise<NativeGenerateResult> {
    if (this.disposed) throw nativeError('DIFFLM_DISPOSED', 'model disposed');
    this.c.generateCalls.push(req);
    this.c.running++;
    this.c.maxRunning = Math.max(this.c.maxRunning, this.c.running);
    try {
      const fail = this.c.failNext;
      this.c.failNext = undefined;
      if (fail) {
        await pause(0);
        throw fail;
      }
      return await this.run(req, onStep);
    } finally {
      this.c.running--;
    }
  }

  score(): Promise<{ nll: number; tokens: number; ms: number }> {
    return Promise.reject(new Error('the fake addon does not score'));
  }

  generateAr(): Promise<NativeGenerateResult> {
    return Promise.reject(new Error('the fake addon has no autoregressive models'));
  }

  private async run(
    req: NativeGenerateRequest,
    onStep: (ev: NativeStepEvent) => void,
  ): Promise<NativeGenerateResult> {
    const p = req.prompt.length;
    const canvas = new Int32Array(p + req.genLength).fill(req.maskTokenId);
    canvas.set(req.prompt);
    const nBlocks = req.genLength / req.blockLength;
    const perBlock = req.steps / nBlocks;
    let step = 0;
    for (let b = 0; b < nBlocks; b++) {
      const start = p + b * req.blockLength;
      const transfer = numTransferTokens(req.blockLength, perBlock);
      for (const k of transfer) {
        await pause(this.c.stepDelayMs);
        if (req.cancel[0] === 1) throw nativeError('DIFFLM_ABORTED', 'aborted by the cancel flag');
        const pairs = commitsFor(canvas, start, start + req.blockLength, k, req, this.c.tokenRule);
        onStep({ step, block: b, committed: Int32Array.from(pairs) });
        step++;
      }
    }
    return {
      canvas,
      steps: step,
      forwards: step,
      forwardMs: step * 2,
      sampleMs: step,
      totalMs: step * 3 + 1,
    };
  }

  async logits(ids: Int32Array, cancel: Int32Array): Promise<Float32Array> {
    if (this.disposed) throw nativeError('DIFFLM_DISPOSED', 'model disposed');
    await pause(0);
    if (cancel[0] === 1) throw nativeError('DIFFLM_ABORTED', 'aborted by the cancel flag');
    const out = new Float32Array(ids.length * this.spec.vocabSize);
    ids.forEach((id, row) => (out[row * this.spec.vocabSize + id] = 1));
    return out;
  }

  memory(): { weightBytes: number; workBytes: number } {
    return { weightBytes: 0, workBytes: 0 };
  }

  dispose(): void {
    this.disposed = true;
    this.c.disposeCalls++;
  }
}

/** A fresh fake binding and the knobs and records that go with it. */
export function createFakeNative(): { binding: NativeBinding; controls: FakeControls } {
  const controls: FakeControls = {
    stepDelayMs: 0,
    tokenRule: defaultTokenRule,
    failNext: undefined,
    running: 0,
    maxRunning: 0,
    generateCalls: [],
    disposeCalls: 0,
    spec: undefined,
  };
  const binding: NativeBinding = {
    version: () => 'fake-0',
    devices: () => ({ cudaBuilt: false, cuda: [], reason: 'fake addon: no CUDA' }),
    cpuInfo: () => ({
      avx2: true,
      fma: true,
      f16c: true,
      avx512f: false,
      avx512bf16: false,
      gemmPath: 'portable',
      cores: 2,
    }),
    loadModel: async (spec) => {
      controls.spec = spec;
      await pause(0);
      return new FakeModel(controls, spec);
    },
  };
  return { binding, controls };
}
