/** What generation hands back: one {@link StepEvent} per denoising step, then a {@link GenerateResult}. */

/** A token committed (unmasked) in one step. */
export interface CommittedToken {
  /** Index in the generated region (0 = first position after the prompt). */
  position: number;
  token: number;
}

/** One denoising step. */
export interface StepEvent {
  /** 0-based global step index. */
  step: number;
  /** 0-based block index. */
  block: number;
  /** Tokens committed in this step (often one; none in a zero-commit step). */
  committed: CommittedToken[];
  /**
   * The generated region after this step (`genLength` ids, prompt excluded), still-masked
   * positions holding `maskTokenId`. A fresh copy per event.
   */
  canvas: number[];
  /** Fraction of the generated region committed so far, 0..1. */
  progress: number;
}

export interface GenerateTimings {
  /**
   * Milliseconds in the denoiser forward passes. On a GPU this is the time to queue them: the
   * GPU runs them while the host goes on, and the wait for it falls in `sampleMs`.
   */
  forwardMs: number;
  /** Milliseconds in sampling and selection (on a GPU, with the wait for the forward). */
  sampleMs: number;
  /** Milliseconds of the whole native generation. */
  totalMs: number;
  /** Generated positions (`genLength`) per second of `totalMs`. */
  tokensPerSecond: number;
}

export interface GenerateResult {
  /** Generated ids only (after the prompt), `genLength` of them, not cut at EOS. */
  tokens: number[];
  /** Text of `tokens` up to the first EOS/EOT, special tokens skipped. */
  text: string;
  /** The full final canvas: prompt ids followed by `tokens`. */
  canvas: number[];
  /** Number of prompt tokens (after the chat template, if any). */
  promptTokens: number;
  /**
   * Denoising steps run (autoregressive models: tokens generated). Steps that commit nothing
   * skip their forward pass.
   */
  steps: number;
  /** Forward passes of the model (the CFG copy not counted separately). */
  forwardPasses: number;
  timings: GenerateTimings;
}
