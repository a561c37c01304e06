/**
 * Bad model folders through the public API: each gives a ModelLoadError naming the file, tensor
 * or key at fault (the engine validates every safetensors header and tensor before use).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelLoadError, loadModel } from '../../lib/index';
import { FIXTURE_A } from './native-fixture';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A copy of fixture A, changed by `edit`. */
function brokenCopy(edit: (dir: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'difflm-bad-'));
  dirs.push(dir);
  cpSync(FIXTURE_A, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editConfig(dir: string, change: Record<string, unknown>): void {
  const file = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, ...change }));
}

describe('loading broken model folders', () => {
  it('names a truncated weights file', async () => {
    const dir = brokenCopy((d) => truncateSync(join(d, 'model.safetensors'), 1000));
    const err = await loadModel(dir, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toContain(join(dir, 'model.safetensors'));
    expect((err as Error).message).toMatch(/run past the end|truncated/);
  });

  it('names a corrupt header', async () => {
    const dir = brokenCopy((d) => {
      const file = join(d, 'model.safetensors');
      const bytes = readFileSync(file);
      bytes.write('#', 8); // the header's opening brace
      writeFileSync(file, bytes);
    });
    await expect(loadModel(dir, { threads: 1 })).rejects.toThrow(/corrupt header: invalid JSON/);
  });

  it('names a missing tensor', async () => {
    const dir = brokenCopy((d) => editConfig(d, { n_layers: 3 }));
    await expect(loadModel(dir, { threads: 1 })).rejects.toThrow(
      new ModelLoadError(
        `missing tensor 'model.transformer.blocks.2.attn_norm.weight' in ${join(dir, 'model.safetensors')}`,
      ),
    );
  });

  it('names a tensor of the wrong shape', async () => {
    const dir = brokenCopy((d) => editConfig(d, { mlp_hidden_size: 192 }));
    await expect(loadModel(dir, { threads: 1 })).rejects.toThrow(
      "tensor 'model.transformer.blocks.0.ff_proj.weight' has shape [160, 64], expected [192, 64]",
    );
  });

  it('names an unknown architecture', async () => {
    const dir = brokenCopy((d) =>
      editConfig(d, { architectures: ['GPT9ForCausalLM'], model_type: 'gpt9' }),
    );
    const err = await loadModel(dir, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toContain('GPT9ForCausalLM');
  });
});
