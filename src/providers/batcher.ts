/** Marks a turn of the event loop in which nothing has been written yet. */
const NOBODY = Symbol('nobody');

/**
 * Group commit: writes that arrive while others are being committed wait, and go together as one
 * statement and one commit when a lane frees up. A write that finds a lane free goes at once, alone,
 * so a lone workflow pays nothing for it. Each caller resumes only when its own write is durable.
 */
export class Batcher<I, O> {
  private queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private inFlight = 0;
  private scheduled = false;
  /** Gathering mode: on while writes keep arriving together, off for a lone writer. */
  private gathering = false;
  /** Who wrote at once in the current turn of the event loop (gather mode off); NOBODY before the first. */
  private writerThisTurn: unknown = NOBODY;
  /** Writes submitted whose callers have not been handed their outcome yet (this one included). */
  private undelivered = 0;

  /**
   * @param flush writes the items and returns one result per item, in order.
   * @param lanes batches committing at once.
   * @param maxBatch most items in one batch.
   * @param gather for a synchronous driver, where nothing is ever "in flight": when writes of two
   *   writers arrive together (in one turn of the event loop), later ones wait for the turn to end
   *   and share one commit; a lone writer keeps writing at once, however many writes it makes in a turn.
   */
  constructor(
    private readonly flush: (items: I[]) => Promise<O[]>,
    private readonly lanes: number,
    private readonly maxBatch: number,
    private readonly gather = false,
  ) {}

  /** Writes `item`; `writer` (a workflow id) tells a lone writer's successive writes from writes of several. */
  submit(item: I, writer?: unknown): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.undelivered++;
      this.queue.push({ item, resolve, reject });
      if (!this.gather) return this.drain();
      if (!this.gathering) {
        if (this.writerThisTurn === NOBODY) {
          this.writerThisTurn = writer;
          setImmediate(() => (this.writerThisTurn = NOBODY));
        }
        // The same writer again, once its earlier writes have been handed back: nobody to share with.
        if (this.writerThisTurn === writer && this.undelivered === 1) return this.drain();
        this.gathering = true;
      }
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (this.queue.length === 1) this.gathering = false;
        this.drain();
      });
    });
  }

  private drain(): void {
    while (this.inFlight < this.lanes && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.flush(batch.map((b) => b.item)).then(
        (results) => {
          this.undelivered -= batch.length;
          batch.forEach((b, i) => b.resolve(results[i]!));
        },
        (err: unknown) => {
          this.undelivered -= batch.length;
          batch.forEach((b) => b.reject(err));
        },
      ).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }
}
