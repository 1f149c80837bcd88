/** Number formatting for the printed tables. */

/** Milliseconds with three significant digits ("0.412 ms", "12.3 ms", "1,234 ms"). */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return `${Math.round(value).toLocaleString('en-US')} ms`;
  return `${Number(value.toPrecision(3))} ms`;
}

/** A rate rounded to whole units, or three significant digits under 100. */
export function rate(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value >= 100) return `${Math.round(value).toLocaleString('en-US')}/s`;
  return `${Number(value.toPrecision(3))}/s`;
}

export function ratio(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Bytes with three significant digits in B, KiB or MiB ("1.23 KiB"). */
export function bytes(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs < 1024) return `${Math.round(value)} B`;
  if (abs < 1024 * 1024) return `${Number((value / 1024).toPrecision(3))} KiB`;
  return `${Number((value / 1024 / 1024).toPrecision(3))} MiB`;
}
