import type { TargetKind } from './targets.js';

export interface Args {
  quick: boolean;
  providers: TargetKind[];
  /** Whether the providers were named explicitly (then an unreachable Postgres is an error). */
  explicitProvider: boolean;
  out: string | undefined;
  /** Scenario ids to run; all when undefined. */
  only: string[] | undefined;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--quick] [--provider=postgres|sqlite|all] [--out=path] [--scenarios=1,2,4]

  --quick        a short run (about two minutes in all); without it, a longer run for publishable numbers
  --provider     which database to measure (default all); Postgres is read from DATABASE_URL,
                 default postgres://postgres@127.0.0.1:5432/test
  --out          where to write the JSON report (default bench/results/<timestamp>.json)
  --scenarios    run only these scenario numbers (each measures the floor it divides by;
                 scenario 1 reports the floor on its own)`;

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, providers: ['postgres', 'sqlite'], explicitProvider: false, out: undefined, only: undefined, help: false };
  for (const arg of argv) {
    const [key, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    switch (key) {
      case '--quick':
        args.quick = true;
        break;
      case '--provider':
        if (value === 'all') args.providers = ['postgres', 'sqlite'];
        else if (value === 'postgres' || value === 'sqlite') {
          args.providers = [value];
          args.explicitProvider = true;
        } else throw new Error(`--provider must be postgres, sqlite or all, got ${JSON.stringify(value)}`);
        break;
      case '--out':
        if (!value) throw new Error('--out needs a path: --out=bench/results/run.json');
        args.out = value;
        break;
      case '--scenarios':
        if (!value) throw new Error('--scenarios needs a list: --scenarios=1,2');
        args.only = value.split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return args;
}
