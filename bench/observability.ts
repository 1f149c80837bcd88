/**
 * What observability costs per step: `node --import tsx bench/observability.ts [--workflows=N]`.
 *
 * Runs the same workflow of 20 steps on an in-memory SQLite database (so the figure is the CPU
 * spent in Cairn, not the disk) in three rounds: without OpenTelemetry (`telemetry: false`, no
 * hooks: the path every engine takes when neither is set), with hooks that do nothing, and with
 * the OpenTelemetry SDK registered (spans to an in-memory exporter, metrics to a reader). Rounds
 * alternate so drift hits each alike; the median per-step time of each is reported, with the
 * differences to the first.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Engine, type EngineOptions } from '../src/index.js';

const STEPS = 20;
const arg = process.argv.find((a) => a.startsWith('--workflows='));
const WORKFLOWS = arg ? Number(arg.slice('--workflows='.length)) : 400;
const ROUNDS = 5;

// Registered once for the process; the rounds without OpenTelemetry pass `telemetry: false`.
const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 })] });
metrics.setGlobalMeterProvider(meterProvider);
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** Microseconds per step over WORKFLOWS sequential workflows of STEPS steps each. */
async function perStep(options: Partial<EngineOptions>): Promise<number> {
  const engine = await Engine.open({ database: 'sqlite::memory:', ...options });
  const wf = engine.workflow('steps', async (ctx) => {
    let n = 0;
    for (let i = 0; i < STEPS; i++) n = await ctx.step(`s${i}`, () => n + 1);
    return n;
  });
  for (let i = 0; i < 20; i++) await wf.run(undefined);
  const began = performance.now();
  for (let i = 0; i < WORKFLOWS; i++) await wf.run(undefined);
  const us = ((performance.now() - began) * 1_000) / (WORKFLOWS * STEPS);
  await engine.close();
  spans.reset();
  return us;
}

const variants: Array<[string, Partial<EngineOptions>]> = [
  ['off (no hooks, no OpenTelemetry)', { telemetry: false }],
  ['hooks (six no-op hooks)', { telemetry: false, hooks: { workflowStarted() {}, workflowEnded() {}, stepEnded() {}, stepRetried() {}, workflowEnqueued() {}, workflowAdopted() {} } }],
  ['OpenTelemetry SDK (spans + metrics)', {}],
];
const samples = variants.map((): number[] => []);
for (let r = 0; r < ROUNDS; r++) for (const [i, [, options]] of variants.entries()) samples[i]!.push(await perStep(options));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(samples[0]!);
console.log(`${WORKFLOWS} workflows x ${STEPS} steps, sqlite::memory:, median of ${ROUNDS} rounds`);
for (const [i, [label]] of variants.entries()) {
  const m = median(samples[i]!);
  console.log(`${label.padEnd(38)} ${m.toFixed(1).padStart(7)} µs/step  (${i === 0 ? 'baseline' : `+${(m - base).toFixed(1)} µs/step`})`);
}
await meterProvider.shutdown();
