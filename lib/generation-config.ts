/**
 * Generation defaults from a model folder's generation_config.json (as Hugging Face models
 * ship them): they fill every option the caller leaves unset.
 */
import type { ModelConfig } from './config';
import type { DreamAlg, GenerateOptions } from './options';

/** The options generation_config.json sets for this model's way of decoding. */
export function generationDefaults(config: ModelConfig): GenerateOptions {
  const g = config.generationConfig ?? {};
  const num = (key: string): number | undefined =>
    typeof g[key] === 'number' ? (g[key] as number) : undefined;
  const defined = (o: GenerateOptions): GenerateOptions =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as GenerateOptions;
  if (config.family === 'llama') {
    return defined({
      genLength: num('max_new_tokens'),
      temperature: g.do_sample === false ? 0 : num('temperature'),
      topK: num('top_k'),
      topP: num('top_p'),
    });
  }
  if (config.family === 'dream') {
    // Dream's generation_config.json: DreamGenerationConfig's keys (null: unset). An alg
    // difflm does not implement is passed on, so that generate() names it in its error unless
    // the call sets alg.
    const alg = g.alg;
    return defined({
      genLength: num('max_new_tokens'),
      steps: num('steps'),
      temperature: num('temperature'),
      topK: num('top_k'),
      topP: num('top_p'),
      alg: typeof alg === 'string' ? (alg as DreamAlg) : undefined,
      algTemp: num('alg_temp'),
      eps: num('eps'),
    });
  }
  const remasking = g.remasking;
  return defined({
    genLength: num('gen_length'),
    steps: num('steps'),
    blockLength: num('block_length'),
    temperature: num('temperature'),
    cfgScale: num('cfg_scale'),
    remasking: remasking === 'low_confidence' || remasking === 'random' ? remasking : undefined,
  });
}

/**
 * The caller's options over the model's defaults. When the caller sets genLength, the defaults'
 * steps (tied to their own genLength) are dropped, and their blockLength kept only if it still
 * divides genLength, so `{ genLength: 48 }` means what it means without a generation_config.
 */
export function withDefaults(
  defaults: GenerateOptions,
  given: Record<string, unknown>,
): Record<string, unknown> {
  const d: Record<string, unknown> = { ...defaults };
  const genLength = given.genLength;
  if (genLength !== undefined) {
    delete d.steps;
    const block = d.blockLength;
    if (typeof block !== 'number' || typeof genLength !== 'number' || genLength % block !== 0) {
      delete d.blockLength;
    }
  }
  return { ...d, ...given };
}
