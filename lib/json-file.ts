/** Reading the JSON files of a model folder, with errors that name the file. */
import { readFileSync } from 'node:fs';
import { ModelLoadError } from './errors';

export type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a JSON object from `file`; throws {@link ModelLoadError} naming the file. */
export function readJsonObject(file: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : String(err);
    throw new ModelLoadError(`Cannot read ${file}: ${reason}`, { file, cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${file} is not valid JSON: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  if (!isObject(value)) {
    throw new ModelLoadError(`${file} must hold a JSON object`, { file });
  }
  return value;
}

/** A JSON value is "absent" when the key is missing or null (HF configs write null for unset). */
export function present(obj: JsonObject, key: string): boolean {
  return obj[key] !== undefined && obj[key] !== null;
}
