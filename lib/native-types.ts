/**
 * Types of the native addon's surface (native/addon). This is the one contract between
 * lib/ and the C++ engine: every value crossing N-API is described here.
 */

/** What the engine found about the CPU and which kernels it dispatches to. */
export interface NativeCpuInfo {
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bf16: boolean;
  /** Kernel family the GEMM dispatcher chose: "avx512bf16" | "avx512" | "avx2" | "portable". */
  gemmPath: string;
  /** Logical cores available to this process. */
  cores: number;
}

/** Architecture description handed to the engine; lib/ reads config.json and fills it. */
export interface NativeModelSpec {
  /**
   * Engine family: "llada" or "dream" (masked diffusion; Dream: q/k/v biases and shifted
   * logits) or "llama" (causal, left to right).
   */
  arch: 'llada' | 'dream' | 'llama';
  /** Absolute paths of the safetensors files (one, or every shard). */
  files: string[];
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  mlpHidden: number;
  /** Rows of the embedding and of the LM head (config `embedding_size`, else `vocab_size`). */
  vocabSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  maxSequenceLength: number;
  weightTying: boolean;
  /** Worker threads for the CPU backend (>= 1). */
  threads: number;
  /** Backend: "cpu" or "cuda" (device 0). */
  device: 'cpu' | 'cuda';
}

/** A CUDA device the engine can use. */
export interface NativeCudaDevice {
  index: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  /** "major.minor", e.g. "9.0". */
  computeCapability: string;
}

export interface NativeDevices {
  /** Whether this binary contains the CUDA backend. */
  cudaBuilt: boolean;
  cuda: NativeCudaDevice[];
  /**
   * Why `cuda` is empty (no CUDA in this build, no driver, no device, only GPUs older than
   * compute capability 7.5); otherwise the GPUs left out for their age, or "".
   */
  reason: string;
}

/** Options of one masked-diffusion generation, already validated by lib/. */
export interface NativeGenerateRequest {
  /** Prompt ids; the canvas is prompt + genLength masks. */
  prompt: Int32Array;
  genLength: number;
  steps: number;
  blockLength: number;
  temperature: number;
  /** 0 = low_confidence, 1 = random. */
  remasking: number;
  cfgScale: number;
  /** Seed for every random choice (Gumbel noise, random remasking); integer in [0, 2^53). */
  seed: number;
  maskTokenId: number;
  /** Token made impossible to draw when logitsEosInf; -1 for none. */
  eosTokenId: number;
  /** Token whose confidence is -inf when confidenceEosEotInf; -1 for none. */
  eotTokenId: number;
  logitsEosInf: boolean;
  confidenceEosEotInf: boolean;
  /** 0 = none, 1 = prefix, 2 = dual (Fast-dLLM block KV caches). */
  cache: number;
  /** 0 = fixed counts from steps, 1 = threshold, 2 = factor. */
  parallel: number;
  /** Confidence threshold of parallel mode 1, or of Dream's confidence_threshold, in [0, 1]. */
  threshold: number;
  /** Factor of parallel mode 2, > 0. */
  factor: number;
  /** 0 = LLaDA's sampler, 1 = Dream's (then blockLength == genLength, LLaDA's options off). */
  sampler: number;
  /** Dream: 0 = origin, 1 = maskgit_plus, 2 = topk_margin, 3 = entropy, 4 = confidence_threshold. */
  alg: number;
  /** Dream: >= 0 (0: the most confident positions). */
  algTemp: number;
  /** Dream: the schedule's last timestep, in (0, 1). */
  eps: number;
  /** Dream: 0 = off. */
  topK: number;
  /** Dream: 1 = off. */
  topP: number;
  /**
   * Cancel flag: lib/ writes 1 into element 0 to cancel; the engine polls it between steps
   * (and between layers) and then rejects with a message starting with "aborted".
   */
  cancel: Int32Array;
}

/** Options of one left-to-right generation (causal models), already validated by lib/. */
export interface NativeArRequest {
  prompt: Int32Array;
  /** Most tokens to generate. */
  genLength: number;
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
  /** -1 for none. */
  eosTokenId: number;
  stopAtEos: boolean;
  cancel: Int32Array;
}

/** A likelihood request: ids[first..] are scored given what precedes them. */
export interface NativeScoreRequest {
  ids: Int32Array;
  first: number;
  /** Monte-Carlo samples and samples per forward (masked-diffusion models). */
  samples: number;
  batch: number;
  seed: number;
  /** -1 for causal models. */
  maskTokenId: number;
  cancel: Int32Array;
}

export interface NativeScoreResult {
  /** Nats summed over the scored tokens (an upper bound for masked-diffusion models). */
  nll: number;
  tokens: number;
  ms: number;
}

/** One denoising step, sent from the worker thread without blocking it. */
export interface NativeStepEvent {
  /** 0-based global step index. */
  step: number;
  /** 0-based block index. */
  block: number;
  /** Interleaved (position, token) pairs committed in this step; positions index the canvas. */
  committed: Int32Array;
}

export interface NativeGenerateResult {
  /** Final canvas: prompt followed by the generated tokens. */
  canvas: Int32Array;
  steps: number;
  /** Forward passes run. */
  forwards: number;
  /** Milliseconds spent in the denoiser forward, in sampling/selection, and in total. */
  forwardMs: number;
  sampleMs: number;
  totalMs: number;
}

/** A loaded model: weights mapped, thread pool started. */
export interface NativeModel {
  /** Full logits (seqLen × vocab, row-major) of one forward over `ids`. */
  logits(ids: Int32Array, cancel: Int32Array): Promise<Float32Array>;
  /** Masked-diffusion generation; `onStep` is called on the JS thread, in order, before the promise settles. */
  generate(
    req: NativeGenerateRequest,
    onStep: (ev: NativeStepEvent) => void,
  ): Promise<NativeGenerateResult>;
  /** Left-to-right generation with a KV cache (causal models); one event per token. */
  generateAr(
    req: NativeArRequest,
    onStep: (ev: NativeStepEvent) => void,
  ): Promise<NativeGenerateResult>;
  /** Negative log-likelihood: exact (causal) or LLaDA's Monte-Carlo ELBO bound (masked). */
  score(req: NativeScoreRequest): Promise<NativeScoreResult>;
  /** Bytes of weights mapped (file bytes) and of working buffers allocated. */
  memory(): { weightBytes: number; workBytes: number };
  /** Releases the native model once running calls end; further calls reject. */
  dispose(): void;
}

export interface NativeBinding {
  version(): string;
  cpuInfo(): NativeCpuInfo;
  /**
   * CUDA devices the engine can use (queries the driver; cheap after the first call). With
   * `freeMemory` false, `freeBytes` is 0: its query creates a CUDA context on every device.
   */
  devices(freeMemory?: boolean): NativeDevices;
  /** Maps and validates the weights against the spec (async, off the event loop). */
  loadModel(spec: NativeModelSpec): Promise<NativeModel>;
}

/**
 * Native errors are plain Error objects with a `code` saying what failed; lib/errors.ts maps
 * them to typed errors. The message names the file, tensor or argument at fault.
 */
export type NativeErrorCode =
  | 'DIFFLM_MODEL_LOAD' // a weights file is missing, corrupt, truncated, or disagrees with the spec
  | 'DIFFLM_INVALID_ARGUMENT' // an argument lib/ should have rejected reached the engine
  | 'DIFFLM_ABORTED' // the cancel flag was set
  | 'DIFFLM_OUT_OF_MEMORY' // an allocation failed
  | 'DIFFLM_DISPOSED' // the model was disposed
  | 'DIFFLM_INTERNAL'; // anything else (a bug)
