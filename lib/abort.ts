/**
 * Cancellation of one native call: a flag the engine polls (element 0 set to 1 means stop) and the
 * reason the call must reject with (the caller's `signal.reason`, a dispose, or an onStep error).
 */
import { AbortError } from './errors';

export class Cancellation {
  /** Shared with the engine; lib writes 1, the engine only reads. */
  readonly flag = new Int32Array(1);
  private why: { reason: unknown } | undefined;

  get cancelled(): boolean {
    return this.why !== undefined;
  }

  /** The reason of the first {@link cancel}. */
  get reason(): unknown {
    return this.why?.reason;
  }

  /** Asks the engine to stop; the first reason wins. */
  cancel(reason: unknown): void {
    if (this.why) return;
    this.why = { reason };
    this.flag[0] = 1;
  }
}

/** The value to reject with when `signal` aborted: its reason, unchanged. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new AbortError();
}

/** Throws `signal.reason` if the signal has already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** Calls `onAbort(reason)` once if `signal` aborts; returns the function removing the listener. */
export function onAbort(
  signal: AbortSignal | undefined,
  handler: (reason: unknown) => void,
): () => void {
  if (!signal) return () => undefined;
  const listener = (): void => handler(abortReason(signal));
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
