import type * as Api from '@opentelemetry/api';
import type { Provider } from '../providers/provider.js';
import type { Logger } from '../types.js';

type OtelApi = typeof Api;

/** Attribute keys on Cairn's spans and metrics. */
export const ATTR = {
  workflowId: 'cairn.workflow.id',
  workflowName: 'cairn.workflow.name',
  status: 'cairn.status',
  stepId: 'cairn.step.id',
  stepName: 'cairn.step.name',
  attempts: 'cairn.step.attempts',
  appVersion: 'cairn.app_version',
  queue: 'cairn.queue',
  executorId: 'cairn.executor.id',
} as const;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * `@opentelemetry/api` when the application has it installed, loaded once at open by a dynamic
 * import: without it nothing of this module runs. Spans are made when a tracer provider is
 * registered globally, metrics when a meter provider is, both before `Engine.open`.
 */
export class Telemetry {
  readonly tracer: Api.Tracer | undefined;
  readonly workflows: Api.Counter | undefined;
  readonly stepDuration: Api.Histogram | undefined;
  private readonly meter: Api.Meter | undefined;

  private constructor(readonly api: OtelApi) {
    const tracing = api.trace.getTracerProvider();
    const delegate = tracing instanceof api.ProxyTracerProvider ? tracing.getDelegate() : tracing;
    if (delegate.constructor.name !== 'NoopTracerProvider') this.tracer = api.trace.getTracer('cairn');
    const metering = api.metrics.getMeterProvider();
    if (metering.constructor.name !== 'NoopMeterProvider') {
      const meter = api.metrics.getMeter('cairn');
      this.meter = meter;
      this.workflows = meter.createCounter('cairn.workflows', { description: 'Workflows ended, by name and status' });
      this.stepDuration = meter.createHistogram('cairn.step.duration', { description: 'How long steps ran, attempts included', unit: 'ms' });
    }
  }

  /** The API when it is installed and a tracer or meter provider is registered; undefined otherwise (or when `enabled` is false). */
  static async load(enabled: boolean | undefined): Promise<Telemetry | undefined> {
    if (enabled === false) return undefined;
    let api: OtelApi;
    try {
      api = await import('@opentelemetry/api');
    } catch {
      return undefined;
    }
    const telemetry = new Telemetry(api);
    return telemetry.tracer || telemetry.meter ? telemetry : undefined;
  }

  /** The caller's active span as a W3C traceparent, stored with a workflow it starts; null when no span is active. */
  capture(): string | null {
    if (!this.tracer) return null;
    const span = this.api.trace.getSpanContext(this.api.context.active());
    if (!span || !this.api.isSpanContextValid(span)) return null;
    return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  }

  /** The context a workflow's spans are children of: the stored caller's span (remote), else the root. */
  parentOf(traceContext: string | null): Api.Context {
    const root = this.api.ROOT_CONTEXT;
    const m = traceContext === null ? null : TRACEPARENT.exec(traceContext);
    if (!m) return root;
    return this.api.trace.setSpanContext(root, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true });
  }

  /**
   * Reports `cairn.queue.depth` (workflows ENQUEUED per queue, read from the database) at each
   * collection; returns the function that stops it.
   */
  observeQueues(provider: Provider, logger: Logger): () => void {
    const meter = this.meter;
    if (!meter) return () => undefined;
    const gauge = meter.createObservableGauge('cairn.queue.depth', { description: 'Workflows waiting on each queue (ENQUEUED)' });
    const callback = async (result: Api.ObservableResult): Promise<void> => {
      try {
        for (const q of await provider.listQueues()) result.observe(q.enqueued, { [ATTR.queue]: q.name });
      } catch (err) {
        logger.warn({ err }, 'could not read queue depths for cairn.queue.depth');
      }
    };
    gauge.addCallback(callback);
    return () => gauge.removeCallback(callback);
  }

  /** Marks a span failed with `error`. */
  failed(span: Api.Span, error: unknown): void {
    if (error instanceof Error) span.recordException(error);
    else span.recordException(String(error));
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
}
