/** `loadModel()`: model folder → config, tokenizer, native model. */
import { readModelConfig, type ModelConfig } from './config';
import { DeviceUnavailableError, ModelLoadError, captureCallerStack, fromNative } from './errors';
import { lladaSpec, lladaSpecialIds } from './families/llada';
import { DiffusionModel } from './model';
import { loadNative } from './native';
import type { NativeBinding } from './native-types';
import { validateLoadOptions, type LoadOptions } from './options';
import { Tokenizer } from './tokenizer';

function checkTokenizerFits(tokenizer: Tokenizer, config: ModelConfig): void {
  if (tokenizer.vocabSize > config.vocabRows) {
    throw new ModelLoadError(
      `${tokenizer.file} has token ids up to ${tokenizer.vocabSize - 1} but the model has only ` +
        `${config.vocabRows} vocabulary rows (embedding_size or vocab_size in config.json)`,
      { file: tokenizer.file },
    );
  }
}

/** 'auto' → CUDA when a usable GPU exists, else CPU; 'cuda' without one is an error. */
function resolveDevice(binding: NativeBinding, device: 'cpu' | 'cuda' | 'auto'): 'cpu' | 'cuda' {
  if (device === 'cpu') return 'cpu';
  const d = binding.devices(false); // no free memory: that would start a context on every GPU
  if (d.cuda.length > 0) return 'cuda';
  if (device === 'auto') return 'cpu';
  throw new DeviceUnavailableError(`device "cuda" is not available: ${d.reason}`);
}

/** Reads, validates and loads a model folder (see `loadModel` in index.ts). */
export async function loadModelFrom(dir: string, options?: LoadOptions): Promise<DiffusionModel> {
  const callerStack = captureCallerStack();
  const opts = validateLoadOptions(options);
  const config = readModelConfig(dir);
  const tokenizer = Tokenizer.fromFolder(config.dir);
  checkTokenizerFits(tokenizer, config);
  const eot = config.family === 'dream' ? '<|im_end|>' : '<|eot_id|>';
  const specialTokens = lladaSpecialIds(config, (t) => tokenizer.tokenToId(t), eot);
  const binding = loadNative();
  const device = resolveDevice(binding, opts.device);
  let native;
  try {
    native = await binding.loadModel(
      lladaSpec(config, config.files, opts.threads, device, config.family),
    );
  } catch (err) {
    throw fromNative(err, callerStack);
  }
  return DiffusionModel._create({ native, config, tokenizer, specialTokens });
}
