/** `loadModel()`: model folder → config, tokenizer, native model. */
import { readModelConfig, type ModelConfig } from './config';
import { ModelLoadError, captureCallerStack, fromNative } from './errors';
import { lladaSpec, lladaSpecialIds } from './families/llada';
import { DiffusionModel } from './model';
import { loadNative } from './native';
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

/** Reads, validates and loads a model folder (see `loadModel` in index.ts). */
export async function loadModelFrom(dir: string, options?: LoadOptions): Promise<DiffusionModel> {
  const callerStack = captureCallerStack();
  const opts = validateLoadOptions(options);
  const config = readModelConfig(dir);
  const tokenizer = Tokenizer.fromFolder(config.dir);
  checkTokenizerFits(tokenizer, config);
  const specialTokens = lladaSpecialIds(config, (t) => tokenizer.tokenToId(t));
  const binding = loadNative();
  let native;
  try {
    native = await binding.loadModel(lladaSpec(config, config.files, opts.threads));
  } catch (err) {
    throw fromNative(err, callerStack);
  }
  return DiffusionModel._create({ native, config, tokenizer, specialTokens });
}
