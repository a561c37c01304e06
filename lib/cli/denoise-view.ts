/**
 * `--show-denoising`: the generated region redrawn live as masks turn into tokens.
 * `renderCanvas` is pure (tested); `DenoiseView` redraws it in place with ANSI escapes.
 */
import type { SpecialTokenIds } from '../families/llada';
import type { StepEvent } from '../results';
import type { Tokenizer } from '../tokenizer';

const DIM = (s: string): string => `\x1b[2m${s}\x1b[22m`;
const FRESH = (s: string): string => `\x1b[1;36m${s}\x1b[0m`;
/** Shown for a still-masked position. */
export const MASK_GLYPH = '░';
/** Shown for EOS/EOT (LLaDA pads the answer with EOS). */
export const END_GLYPH = '·';
const FRAME_MS = 33;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\x00-\x1f\x7f]/g;

export interface RenderOptions {
  special: SpecialTokenIds;
  /** Display text of one token (already sanitized). */
  tokenText: (id: number) => string;
  /** Terminal columns to wrap at. */
  width: number;
  /** Positions committed in the step being shown (highlighted). */
  fresh?: ReadonlySet<number>;
  /** Use ANSI colors. */
  color: boolean;
}

/** Makes a token printable on one line: newlines and tabs as visible glyphs, no control chars. */
export function sanitizeTokenText(text: string): string {
  return text.replace(/\r?\n/g, '↵').replace(/\t/g, '→').replace(CONTROL_CHARS, '');
}

/** The canvas as lines of at most `width` visible characters. */
export function renderCanvas(canvas: readonly number[], o: RenderOptions): string[] {
  const lines: string[] = [];
  let line = '';
  let used = 0;
  for (const [i, id] of canvas.entries()) {
    let plain: string;
    let styled: (s: string) => string = (s) => s;
    if (id === o.special.mask) {
      plain = MASK_GLYPH;
      if (o.color) styled = DIM;
    } else if (id === o.special.eos || id === o.special.eot) {
      plain = END_GLYPH;
      if (o.color) styled = DIM;
    } else {
      plain = o.tokenText(id);
      if (o.color && o.fresh?.has(i)) styled = FRESH;
    }
    for (const chunk of splitToWidth(plain, used, o.width)) {
      if (chunk.newline) {
        lines.push(line);
        line = '';
        used = 0;
      }
      line += styled(chunk.text);
      used += [...chunk.text].length;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines;
}

/** Splits `text` into pieces that fit the line (`newline` = start a new line first). */
function splitToWidth(
  text: string,
  used: number,
  width: number,
): { text: string; newline: boolean }[] {
  const chars = [...text];
  const out: { text: string; newline: boolean }[] = [];
  let room = Math.max(width - used, 0);
  let newline = false;
  while (chars.length > 0) {
    if (room === 0) {
      newline = true;
      room = Math.max(width, 1);
    }
    const piece = chars.splice(0, room);
    out.push({ text: piece.join(''), newline });
    room -= piece.length;
    newline = false;
  }
  return out;
}

/** Live view on a TTY stream. */
export class DenoiseView {
  private drawnLines = 0;
  private lastDraw = 0;
  private readonly textCache = new Map<number, string>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tokenizer: Tokenizer,
    private readonly special: SpecialTokenIds,
    private readonly totalSteps: number,
  ) {}

  /** Redraws for a step (at most ~30 frames a second); `force` draws regardless. */
  update(ev: StepEvent, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < FRAME_MS) return;
    this.lastDraw = now;
    const width = Math.max((this.out.columns ?? 80) - 1, 10);
    const fresh = force ? undefined : new Set(ev.committed.map((c) => c.position));
    let lines = renderCanvas(ev.canvas, {
      special: this.special,
      tokenText: (id) => this.tokenText(id),
      width,
      fresh,
      color: true,
    });
    const maxLines = Math.max((this.out.rows ?? 24) - 2, 1);
    if (lines.length > maxLines) lines = lines.slice(lines.length - maxLines);
    const status = DIM(
      `step ${ev.step + 1}/${this.totalSteps} · block ${ev.block + 1} · ${Math.round(ev.progress * 100)}%`,
    );
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : '';
    this.out.write(`${up}\x1b[0J${[...lines, status].join('\n')}\n`);
    this.drawnLines = lines.length + 1;
  }

  private tokenText(id: number): string {
    let text = this.textCache.get(id);
    if (text === undefined) {
      text = sanitizeTokenText(this.tokenizer.decode([id], { skipSpecialTokens: false }));
      this.textCache.set(id, text);
    }
    return text;
  }
}
