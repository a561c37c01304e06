/** Typed reads of config.json keys; every error names the key and the file. */
import { ModelLoadError } from '../errors';
import { present, type JsonObject } from '../json-file';

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

export class ConfigReader {
  constructor(
    readonly raw: JsonObject,
    readonly file: string,
  ) {}

  has(key: string): boolean {
    return present(this.raw, key);
  }

  missing(key: string, hint = ''): ModelLoadError {
    return new ModelLoadError(`${this.file} is missing the required key "${key}"${hint}`, {
      file: this.file,
      key,
    });
  }

  invalid(key: string, expected: string): ModelLoadError {
    const value = show(this.raw[key]);
    return new ModelLoadError(`${this.file}: "${key}" must be ${expected} but is ${value}`, {
      file: this.file,
      key,
    });
  }

  unsupported(key: string, supported: string): ModelLoadError {
    const value = show(this.raw[key]);
    return new ModelLoadError(
      `${this.file}: "${key}": ${value} is not supported by difflm (supported: ${supported})`,
      { file: this.file, key },
    );
  }

  /** A positive integer (or a non-negative one with `allowZero`), required unless `fallback`. */
  int(key: string, opts: { fallback?: number; allowZero?: boolean } = {}): number {
    if (!this.has(key)) {
      if (opts.fallback !== undefined) return opts.fallback;
      throw this.missing(key);
    }
    const v = this.raw[key];
    const min = opts.allowZero ? 0 : 1;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw this.invalid(key, opts.allowZero ? 'a non-negative integer' : 'a positive integer');
    }
    return v;
  }

  /** A positive finite number, required unless `fallback`. */
  positive(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback !== undefined) return fallback;
      throw this.missing(key);
    }
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw this.invalid(key, 'a positive number');
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.raw[key];
    if (typeof v !== 'boolean') throw this.invalid(key, 'true or false');
    return v;
  }

  /** Rejects a flag whose value is set and differs from `supported`. */
  expect(key: string, supported: string | boolean): void {
    if (this.has(key) && this.raw[key] !== supported) {
      throw this.unsupported(key, show(supported));
    }
  }
}
