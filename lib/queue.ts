/**
 * A FIFO queue of async tasks that runs one at a time: calls on one model are serialized in the
 * order they were made. A queued task can leave the queue early (abort, dispose).
 */

interface Entry {
  run: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

export class TaskQueue {
  private readonly waiting: Entry[] = [];
  private running: Promise<unknown> | undefined;

  /** Whether a task is running now. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /**
   * Runs `task` after every task queued before it. `onQueued` receives a function that removes
   * the task from the queue and rejects its promise with the given reason (no-op once started).
   */
  push<T>(
    task: () => Promise<T>,
    onQueued?: (cancel: (reason: unknown) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = { run: task, resolve: resolve as (v: unknown) => void, reject };
      this.waiting.push(entry);
      onQueued?.((reason) => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(reason);
        }
      });
      this.next();
    });
  }

  /** Rejects every task that has not started yet. */
  rejectWaiting(reason: () => unknown): void {
    for (const entry of this.waiting.splice(0)) entry.reject(reason());
  }

  /** Resolves once the running task (if any) has settled. */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  private next(): void {
    if (this.running) return;
    const entry = this.waiting.shift();
    if (!entry) return;
    const run = entry.run().then(entry.resolve, entry.reject);
    this.running = run;
    void run.finally(() => {
      this.running = undefined;
      this.next();
    });
  }
}
