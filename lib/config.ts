/**
 * Reads a Hugging Face model folder: config.json (validated by the family adapter), the weight
 * files, and the optional generation_config.json.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelLoadError } from './errors';
import { isDreamConfig, parseDreamConfig } from './families/dream';
import { isLladaConfig, parseLladaConfig, type LladaArchitecture } from './families/llada';
import { isLlamaConfig, parseLlamaConfig } from './families/llama';
import { readJsonObject, type JsonObject } from './json-file';

/** A model's configuration as difflm understands it (`model.config`). */
export interface ModelConfig extends LladaArchitecture {
  /**
   * Family adapter that read it: 'llada' or 'dream' (masked diffusion, each with its authors'
   * sampler) or 'llama' (autoregressive).
   */
  family: 'llada' | 'dream' | 'llama';
  /** Absolute path of the model folder. */
  dir: string;
  /** Absolute paths of the safetensors weight files (one, or every shard). */
  files: string[];
  /** generation_config.json, when the folder has one (informational). */
  generationConfig: JsonObject | undefined;
  /** config.json as read. */
  raw: JsonObject;
}

interface Family {
  name: ModelConfig['family'];
  matches(raw: JsonObject): boolean;
  parse(raw: JsonObject, file: string): LladaArchitecture;
}

/** Supported families; the first that matches config.json reads it. */
const FAMILIES: Family[] = [
  { name: 'llada', matches: isLladaConfig, parse: parseLladaConfig },
  { name: 'dream', matches: isDreamConfig, parse: parseDreamConfig },
  { name: 'llama', matches: isLlamaConfig, parse: parseLlamaConfig },
];

function shardsFromIndex(dir: string, indexFile: string): string[] {
  const index = readJsonObject(indexFile);
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new ModelLoadError(`${indexFile} has no "weight_map" object`, {
      file: indexFile,
      key: 'weight_map',
    });
  }
  const names = [...new Set(Object.values(map as JsonObject))];
  if (names.length === 0 || names.some((n) => typeof n !== 'string')) {
    throw new ModelLoadError(`${indexFile}: "weight_map" must map tensor names to file names`, {
      file: indexFile,
      key: 'weight_map',
    });
  }
  const files = (names as string[]).sort().map((n) => join(dir, n));
  for (const file of files) {
    if (!existsSync(file)) {
      throw new ModelLoadError(`Weight shard ${file} (listed in ${indexFile}) is missing`, {
        file,
      });
    }
  }
  return files;
}

/** model.safetensors, else the shards of model.safetensors.index.json, else every *.safetensors. */
export function resolveWeightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return shardsFromIndex(dir, index);
  const any = readdirSync(dir)
    .filter((n) => n.endsWith('.safetensors'))
    .sort();
  if (any.length > 0) return any.map((n) => join(dir, n));
  throw new ModelLoadError(
    `No weights in ${dir}: expected model.safetensors, model.safetensors.index.json or *.safetensors`,
    { file: dir },
  );
}

function checkFolder(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir)
    throw new ModelLoadError(`Model folder ${dir} does not exist or is not a folder`, {
      file: dir,
    });
}

/** Reads and validates the model folder `dir`; throws {@link ModelLoadError} naming file and key. */
export function readModelConfig(dir: string): ModelConfig {
  const abs = resolve(dir);
  checkFolder(abs);
  const file = join(abs, 'config.json');
  const raw = readJsonObject(file);
  const family = FAMILIES.find((f) => f.matches(raw));
  if (!family) {
    const archs = JSON.stringify(raw.architectures ?? null);
    const type = JSON.stringify(raw.model_type ?? null);
    throw new ModelLoadError(
      `Unsupported model in ${abs}: "architectures" is ${archs} and "model_type" is ${type}; ` +
        'difflm supports LLaDA ("LLaDAModelLM" / "llada"), Dream ("DreamModel" / "Dream") and ' +
        'Llama ("LlamaForCausalLM" / "llama")',
      { file, key: 'architectures' },
    );
  }
  const arch = family.parse(raw, file);
  const genFile = join(abs, 'generation_config.json');
  const generationConfig = existsSync(genFile) ? readJsonObject(genFile) : undefined;
  return {
    ...arch,
    family: family.name,
    dir: abs,
    files: resolveWeightFiles(abs),
    generationConfig,
    raw,
  };
}
