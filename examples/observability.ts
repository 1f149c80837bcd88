/**
 * One readable trace per order, with hooks and logs of what went wrong.
 *
 *   npm run demo:observability
 *
 * The OpenTelemetry SDK is registered first (a context manager, a tracer provider exporting to
 * memory, a meter provider with a reader), then the engine opens and finds it. An HTTP-like
 * handler span starts an order workflow whose `charge` step fails once and is retried, and which
 * runs a child workflow for the shipment. At the end the demo prints the trace as a tree, the
 * `cairn.workflows` and `cairn.step.duration` metrics, and what the hooks saw. The logger is a
 * small JSON-lines console logger with pino's `(fields, message)` signature; pino itself drops in.
 */
import { rmSync } from 'node:fs';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Engine, type Logger } from '../src/index.js';

const DB_FILE = './cairn-observability-demo.db';

class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
const reader = new OnDemandReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const line = (level: string) => (fields: object, msg?: string) => {
  const { err, ...rest } = fields as { err?: unknown };
  const error = err instanceof Error ? { err: `${err.name}: ${err.message}` } : {};
  console.log(JSON.stringify({ level, msg, ...rest, ...error }));
};
const logger: Logger = { info: line('info'), warn: line('warn'), error: line('error') };

const seen: string[] = [];
for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) rmSync(f, { force: true });
const engine = await Engine.open({
  database: `sqlite:${DB_FILE}`,
  logger,
  appVersion: 'demo-1',
  executorId: 'demo',
  hooks: {
    workflowEnded: (e) => void seen.push(`workflowEnded ${e.name} ${e.status} in ${e.durationMs} ms`),
    stepRetried: (e) => void seen.push(`stepRetried ${e.stepName} attempt ${e.attempt}, next in ${e.delayMs} ms`),
  },
});

const ship = engine.workflow('ship_order', async (ctx, orderId: string) => {
  const label = await ctx.step('print_label', () => `label-${orderId}`);
  return ctx.step('book_courier', () => `${label} booked`);
});

let declined = 0;
const order = engine.workflow('process_order', async (ctx, orderId: string) => {
  await ctx.step('reserve_stock', () => 'reserved');
  await ctx.step('charge', () => {
    if (declined++ === 0) throw new Error('card network timeout');
    return 'charged';
  }, { retry: { maxAttempts: 3, minDelayMs: 20 } });
  const shipment = await ctx.runChild(ship, orderId, { id: `${orderId}-ship` });
  await ctx.step('email_receipt', () => 'sent');
  return { orderId, shipment };
});
const broken = engine.workflow('refund_order', async (ctx) => {
  await ctx.step('refund', () => {
    throw new Error('refund window closed');
  });
});

await trace.getTracer('shop').startActiveSpan('POST /orders', async (span) => {
  console.log(await order.run('order-7', { id: 'order-7' }));
  await broken.run(undefined, { id: 'refund-7' }).catch(() => undefined);
  span.end();
});
await engine.close();
// Hooks run a turn after their events, off the workflows' path: let the last ones through.
await new Promise((resolve) => setImmediate(resolve));

console.log('\nTrace:');
const finished = spans.getFinishedSpans();
const ms = (s: ReadableSpan) => s.duration[0] * 1e3 + s.duration[1] / 1e6;
const print = (s: ReadableSpan, depth: number) => {
  const events = s.events.length > 0 ? ` [${s.events.map((e) => e.name).join(', ')}]` : '';
  const failed = s.status.code === 2 ? ' ERROR' : '';
  console.log(`${'  '.repeat(depth)}${s.name} ${ms(s).toFixed(1)} ms${failed}${events}`);
  const children = finished.filter((c) => c.parentSpanContext?.spanId === s.spanContext().spanId);
  children.sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  for (const c of children) print(c, depth + 1);
};
for (const root of finished.filter((s) => s.parentSpanContext === undefined)) print(root, 0);

console.log('\nMetrics:');
const { resourceMetrics } = await reader.collect();
for (const m of resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)) {
  for (const p of m.dataPoints) {
    const value = typeof p.value === 'number' ? p.value : `count ${(p.value as Histogram).count}, sum ${((p.value as Histogram).sum ?? 0).toFixed(1)}`;
    console.log(`  ${m.descriptor.name} ${JSON.stringify(p.attributes)} ${value}`);
  }
}
console.log('\nHooks:');
for (const s of seen) console.log(`  ${s}`);
for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) rmSync(f, { force: true });
