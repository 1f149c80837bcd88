import { randomFillSync } from 'node:crypto';

/**
 * Workflow ids the engine makes: UUID version 7 (RFC 9562), a 48-bit millisecond timestamp then
 * random bits. Ids made later sort later, so new rows land at the right-hand edge of every index
 * keyed by workflow id (the workflows' primary key, the steps' primary key) instead of on a
 * random page each: fewer pages written per commit, and fewer full-page images in Postgres's WAL.
 *
 * Within one millisecond the 12 bits after the version count up from a random start, so ids from
 * one process keep their order; past 4,096 in a millisecond the timestamp moves on by one.
 */

const POOL_IDS = 256;
const pool = Buffer.alloc(10 * POOL_IDS);
let poolAt = pool.length;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let lastMs = -1;
let counter = 0;

export function newWorkflowId(now = Date.now()): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 10;
  if (now > lastMs) {
    lastMs = now;
    counter = pool[r]! & 0x7ff; // random start, leaving room to count up
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = 0;
  }
  const ms = lastMs;
  const hi = Math.floor(ms / 0x1000000); // top 24 of the 48 bits
  const lo = ms % 0x1000000;
  return (
    HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! + HEX[(lo >>> 16) & 0xff]! +
    '-' + HEX[(lo >>> 8) & 0xff]! + HEX[lo & 0xff]! +
    '-' + HEX[0x70 | (counter >>> 8)]! + HEX[counter & 0xff]! +
    '-' + HEX[0x80 | (pool[r + 1]! & 0x3f)]! + HEX[pool[r + 2]!]! +
    '-' + HEX[pool[r + 3]!]! + HEX[pool[r + 4]!]! + HEX[pool[r + 5]!]! + HEX[pool[r + 6]!]! + HEX[pool[r + 7]!]! + HEX[pool[r + 8]!]!
  );
}
