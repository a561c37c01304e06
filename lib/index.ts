/**
 * difflm: diffusion language models for Node.js, on a native C++ engine.
 *
 * @example
 * import { loadModel } from 'difflm';
 * await using model = await loadModel('./LLaDA-8B-Instruct');
 * const { text } = await model.generate({ messages: [{ role: 'user', content: 'Hi!' }] });
 */
import { version as packageVersion } from '../package.json';
import { InvalidOptionsError, describeValue, invalidOption } from './errors';
import { loadModelFrom } from './load';
import type { DiffusionModel } from './model';
import { loadNative } from './native';
import type { NativeCpuInfo, NativeCudaDevice } from './native-types';
import type { LoadOptions } from './options';

/** Version of this package. */
export const version: string = packageVersion;

/**
 * Loads a model from a Hugging Face style folder (config.json, *.safetensors, tokenizer.json,
 * tokenizer_config.json). Weights are mapped, not copied.
 * @throws {ModelLoadError} a file, key or tensor is missing, malformed or unsupported (it is named).
 * @throws {InvalidOptionsError} a load option is invalid.
 * @throws {NativeLoadError} the native addon is missing or does not load.
 */
export async function loadModel(dir?: string, options?: LoadOptions): Promise<DiffusionModel> {
  if (dir === undefined) {
    throw new InvalidOptionsError(
      'dir',
      'No built-in model is shipped yet: pass the path of a model folder, e.g. loadModel("./LLaDA-8B-Instruct")',
    );
  }
  if (typeof dir !== 'string' || dir === '') {
    throw invalidOption('dir', 'a folder path', describeValue(dir));
  }
  return loadModelFrom(dir, options);
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
