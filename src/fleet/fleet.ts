import type { AdoptResult, Provider } from '../providers/provider.js';
import type { Logger } from '../types.js';
import { neighbourGone, processIdentity, type ProcessIdentity } from './identity.js';

export interface FleetHost {
  readonly provider: Provider;
  readonly logger: Logger;
  readonly executorId: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly maxRecoveryAttempts: number;
  /**
   * The app version once it is fixed (given, or derived when work began); undefined before. Until
   * then this executor heartbeats but adopts nothing.
   */
  appVersion(): string | undefined;
  names(): string[];
  /** Workflows this executor must not adopt: those whose replay diverged here. */
  exclude(): string[];
  /** Runs what a heartbeat adopted here (resumed from its checkpoints). */
  adopted(result: AdoptResult): Promise<void>;
}

/**
 * This engine as an executor of the fleet: its row in the executors table, a heartbeat every
 * `heartbeatMs` (one statement), and adoption of dead executors' work. An executor is dead when
 * its heartbeat is older than its lease, when it stopped, or, on this host, when its process is
 * gone (a crash seen at once, without waiting out the lease). Every live executor adopts about its
 * share of a dead one's workflows at each heartbeat, so the work spreads across the fleet; queued
 * workflows go back to their queues instead, to be claimed under the queues' limits.
 */
export class Fleet {
  private readonly me: ProcessIdentity = processIdentity();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<AdoptResult | undefined> | undefined;
  private stopped = false;
  /** Local time at which the last heartbeat that got through was sent; the lease runs from there. */
  private lastBeat = 0;
  /** What the last warning about stranded workflows said, so a heartbeat repeats it only when it changes. */
  private strandedReported = '';

  constructor(private readonly host: FleetHost) {}

  /** Registers this executor and starts heartbeating. */
  async start(): Promise<void> {
    await this.register();
    this.schedule();
  }

  /** Whether the lease may have lapsed: no heartbeat got through for most of a lease. */
  leaseLapsed(): boolean {
    return Date.now() - this.lastBeat > this.host.leaseMs - this.host.heartbeatMs;
  }

  /**
   * Heartbeats now, outside the regular rhythm, and returns what it adopted for the caller to run
   * (recovery at boot; a step that found the lease lapsed).
   */
  renew(): Promise<AdoptResult | undefined> {
    return this.beatOnce();
  }

  /**
   * Stops heartbeating and marks this executor stopped, so what it leaves unfinished is adopted by
   * the others at once.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating?.catch(() => undefined);
    await this.host.provider.stopExecutors([this.host.executorId]);
  }

  private async register(): Promise<void> {
    const sentAt = Date.now();
    await this.host.provider.registerExecutor({
      id: this.host.executorId,
      hostname: this.me.hostname,
      hostKey: this.me.hostKey,
      pid: this.me.pid,
      appVersion: this.host.appVersion() ?? '',
      leaseMs: this.host.leaseMs,
      startedAt: sentAt,
    });
    this.lastBeat = sentAt;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.beatOnce()
        .then((adopted) => adopted && this.host.adopted(adopted))
        .catch((err: unknown) => this.host.logger.error({ err, executorId: this.host.executorId }, 'could not run adopted workflows'))
        .finally(() => this.schedule());
    }, this.host.heartbeatMs);
    // The heartbeat alone does not keep a process alive.
    this.timer.unref();
  }

  /** One heartbeat at a time; a caller arriving during one waits for it and then beats again. */
  private beatOnce(): Promise<AdoptResult | undefined> {
    const run = (this.beating ?? Promise.resolve(undefined)).catch(() => undefined).then(() => this.beat());
    this.beating = run;
    return run;
  }

  /** Never throws: a heartbeat that fails is logged, and the next one tries again. */
  private async beat(): Promise<AdoptResult | undefined> {
    if (this.stopped) return undefined;
    try {
      return await this.beatAndAdopt();
    } catch (err) {
      if (!this.stopped) this.host.logger.warn({ err, executorId: this.host.executorId }, 'heartbeat failed; trying again at the next one');
      return undefined;
    }
  }

  private async beatAndAdopt(): Promise<AdoptResult | undefined> {
    const { provider, logger, executorId } = this.host;
    const sentAt = Date.now();
    const appVersion = this.host.appVersion();
    const names = this.host.names();
    const exclude = this.host.exclude();
    const fleet = await provider.heartbeat(executorId, this.me.hostKey, appVersion ?? null, { names, exclude });
    if (!fleet.registered) await this.register();
    else this.lastBeat = sentAt;
    const gone = fleet.neighbours.filter((n) => neighbourGone(this.me, n)).map((n) => n.id);
    if (gone.length > 0) {
      await provider.stopExecutors(gone);
      logger.info({ executorId, stopped: gone }, 'executors on this host whose process is gone were marked stopped');
    }
    const dead = [...new Set([...fleet.dead, ...gone])];
    if ((dead.length === 0 && fleet.unowned === 0) || this.stopped || appVersion === undefined) return undefined;
    const result = await provider.adoptWorkflows({
      executorId,
      names,
      from: dead,
      exclude,
      // Executors just found gone may have been counted live by the heartbeat.
      live: Math.max(1, fleet.live - gone.length),
      maxAttempts: this.host.maxRecoveryAttempts,
    });
    if (dead.length > 0 && fleet.live - gone.length <= 1) await this.reportStranded(dead);
    if (result.claimed.length + result.parked.length + result.requeued > 0) {
      logger.info(
        { executorId, from: dead, adopted: result.claimed.length, parked: result.parked.length, requeued: result.requeued },
        'adopted the unfinished workflows of dead executors, or workflows nobody ran',
      );
    }
    return result;
  }

  /**
   * Alone in the fleet, after adopting what it could: PENDING workflows still owned by dead
   * executors have names no live executor registers, and nothing will run them until one does.
   */
  private async reportStranded(dead: string[]): Promise<void> {
    const { executors } = await this.host.provider.listExecutors();
    const stranded = executors.filter((e) => dead.includes(e.id) && e.pending > 0).map((e) => ({ executorId: e.id, pending: e.pending }));
    const said = JSON.stringify(stranded);
    if (said === this.strandedReported) return;
    this.strandedReported = said;
    if (stranded.length === 0) return;
    this.host.logger.warn(
      { executorId: this.host.executorId, stranded, registered: this.host.names() },
      `${stranded.reduce((n, s) => n + s.pending, 0)} PENDING workflow(s) of dead executors are stranded: no live executor registers their names; start an engine that registers them`,
    );
  }
}
