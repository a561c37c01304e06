/**
 * An unbounded single-consumer channel: the producer pushes synchronously (from native step
 * callbacks), the consumer awaits. Nothing is dropped: buffered items are delivered before the
 * end or the error.
 */
export class Channel<T> {
  private readonly items: T[] = [];
  private ended: { error?: unknown; failed: boolean } | undefined;
  private wake: (() => void) | undefined;

  push = (item: T): void => {
    if (this.ended) return;
    this.items.push(item);
    this.notify();
  };

  close(): void {
    this.ended ??= { failed: false };
    this.notify();
  }

  fail(error: unknown): void {
    this.ended ??= { error, failed: true };
    this.notify();
  }

  /** The next item, or `done` after the last one; rejects with the failure after the last item. */
  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.items.length > 0) return { done: false, value: this.items.shift() as T };
      if (this.ended) {
        if (this.ended.failed) throw this.ended.error;
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
