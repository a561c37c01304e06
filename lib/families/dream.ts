/**
 * Dream family (Dream-org/Dream-v0-Base-7B and -Instruct-7B: `DreamModel`, model_type "Dream"):
 * Qwen2 with bidirectional attention and q/k/v biases, decoded by masked diffusion with Dream's
 * own sampler (logits shifted by one position, a timestep schedule, `alg`). See
 * shared/design/notes/masked_dlm.md §3.
 */
import type { JsonObject } from '../json-file';
import { ConfigReader } from './config-keys';
import type { LladaArchitecture } from './llada';
import { hfArchitecture, tokenIdKey } from './llama';

/** True when config.json describes a Dream model. */
export function isDreamConfig(raw: JsonObject): boolean {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.includes('DreamModel')) return true;
  return raw.model_type === 'Dream';
}

/** Validates a Dream config.json (already parsed) and returns its architecture. */
export function parseDreamConfig(raw: JsonObject, file: string): LladaArchitecture {
  const c = new ConfigReader(raw, file);
  c.expect('use_sliding_window', false);
  // DreamConfig's class defaults: rope_theta 10000, rms_norm_eps 1e-6.
  const arch = hfArchitecture(c, { ropeTheta: 10000, rmsNormEps: 1e-6 });
  const mask = tokenIdKey(c, 'mask_token_id', arch.vocabRows);
  if (mask < 0) throw c.missing('mask_token_id');
  return { ...arch, maskTokenId: mask };
}
