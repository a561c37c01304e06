/**
 * difflm: diffusion language models for Node.js, on a native C++ engine.
 *
 * @example
 * import { loadModel } from 'difflm';
 * await using model = await loadModel('./LLaDA-8B-Instruct');
 * const { text } = await model.generate({ messages: [{ role: 'user', content: 'Hi!' }] });
 */
import { version as packageVersion } from '../package.json';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelLoadError, describeValue, invalidOption } from './errors';
import { loadModelFrom } from './load';
import type { DiffusionModel } from './model';
import { findPackageRoot, loadNative } from './native';
import type { NativeCpuInfo, NativeCudaDevice } from './native-types';
import type { LoadOptions } from './options';

/** Version of this package. */
export const version: string = packageVersion;

/** The models shipped in the package's models/ folder, by `builtin:` name. */
export const BUILTIN_MODELS = {
  diffusion: 'tinystories-llada-7m',
  ar: 'tinystories-llama-7m',
} as const;
export type BuiltinModel = keyof typeof BUILTIN_MODELS;

/** The folder of a `builtin:<name>` model. */
function builtinFolder(spec: string): string {
  const name = spec.slice('builtin:'.length);
  if (!Object.hasOwn(BUILTIN_MODELS, name)) {
    throw invalidOption(
      'dir',
      `a model folder or one of ${Object.keys(BUILTIN_MODELS)
        .map((n) => `"builtin:${n}"`)
        .join(', ')}`,
      JSON.stringify(spec),
      'no such built-in model',
    );
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  if (root === undefined)
    throw new ModelLoadError(`Cannot find the difflm package folder from ${here}`);
  return join(root, 'models', BUILTIN_MODELS[name as BuiltinModel]);
}

/**
 * Loads a model from a Hugging Face style folder (config.json, *.safetensors, tokenizer.json,
 * tokenizer_config.json), or a built-in one: no argument or `"builtin:diffusion"` for the
 * masked-diffusion model trained on TinyStories, `"builtin:ar"` for the autoregressive model of
 * the same size trained on the same data. Weights are mapped, not copied.
 * @throws {ModelLoadError} a file, key or tensor is missing, malformed or unsupported (it is named).
 * @throws {InvalidOptionsError} a load option is invalid, or an unknown `builtin:` name.
 * @throws {NativeLoadError} the native addon is missing or does not load.
 */
export async function loadModel(dir?: string, options?: LoadOptions): Promise<DiffusionModel> {
  if (dir === undefined) return loadModelFrom(builtinFolder('builtin:diffusion'), options);
  if (typeof dir !== 'string' || dir === '') {
    throw invalidOption('dir', 'a folder path', describeValue(dir));
  }
  return loadModelFrom(dir.startsWith('builtin:') ? builtinFolder(dir) : dir, options);
}

/** CPU features the engine found and the GEMM kernels it dispatches to (loads the addon). */
export function cpuInfo(): NativeCpuInfo {
  return loadNative().cpuInfo();
}

/**
 * Devices the engine can run on: the CPU always, plus CUDA GPUs with name, memory and compute
 * capability (loads the addon; queries the NVIDIA driver when the build has CUDA).
 */
export function devices(): { cpu: NativeCpuInfo; cuda: NativeCudaDevice[]; cudaReason: string } {
  const native = loadNative();
  const d = native.devices();
  return { cpu: native.cpuInfo(), cuda: d.cuda, cudaReason: d.reason };
}

/** Version string of the loaded native engine (loads the addon). */
export function nativeVersion(): string {
  return loadNative().version();
}

export { DiffusionModel, type LogitsOptions } from './model';
export type { ModelConfig } from './config';
export type { SpecialTokenIds } from './families/llada';
export { Tokenizer } from './tokenizer';
export type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions } from './tokenizer';
export type { Prompt } from './prompt';
export {
  GENERATE_DEFAULTS,
  type Device,
  type DreamAlg,
  type GenerateOptions,
  type LoadOptions,
  type Remasking,
} from './options';
export type { CommittedToken, GenerateResult, GenerateTimings, StepEvent } from './results';
export { numTransferTokens, planBlocks, type BlockPlan, type PlannedBlock } from './schedule';
export {
  AbortError,
  DeviceUnavailableError,
  DiffLMError,
  EngineError,
  InvalidOptionsError,
  ModelDisposedError,
  ModelLoadError,
  NativeLoadError,
  OutOfMemoryError,
} from './errors';
export type { NativeCpuInfo, NativeCudaDevice } from './native-types';
