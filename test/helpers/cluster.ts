import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

/**
 * A PostgreSQL cluster of its own, on its own port, for tests and scripts that stop and restart
 * the server (never the shared one). Made with Debian's postgresql-common tools; trust
 * authentication on 127.0.0.1, except for the role `cairn_pw`, which must give its password
 * (scram-sha-256), for tests of bad credentials.
 */
export class Cluster {
  static readonly VERSION = '15';
  /** The role that needs a password, and its password. */
  static readonly PASSWORD_ROLE = 'cairn_pw';
  static readonly PASSWORD = 'right-password';

  constructor(
    readonly name: string,
    readonly port: number,
  ) {}

  /**
   * Why clusters cannot be made here, or false. Under CI=true a missing tool is a failure, not a
   * reason to skip, so this throws instead.
   */
  static unavailable(): string | false {
    const missing = ['pg_createcluster', 'pg_ctlcluster', 'pg_dropcluster'].filter((tool) => !onPath(tool));
    if (missing.length === 0) return false;
    const reason = `${missing.join(', ')} not found (postgresql-common); tests that restart PostgreSQL need their own cluster`;
    if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`${reason}. CI must not skip them.`);
    process.stderr.write(`\n*** SKIPPED: ${reason}\n\n`);
    return reason;
  }

  /** A URL for the cluster's `postgres` database (or `db`), as `user`. */
  url(db = 'postgres', user = 'postgres', password?: string): string {
    return `postgres://${user}${password === undefined ? '' : `:${encodeURIComponent(password)}`}@127.0.0.1:${this.port}/${db}`;
  }

  /** Makes the cluster (dropping a leftover of the same name first), configures it and starts it. */
  create(): void {
    this.drop();
    run('pg_createcluster', [Cluster.VERSION, this.name, '-p', String(this.port)]);
    const etc = `/etc/postgresql/${Cluster.VERSION}/${this.name}`;
    writeFileSync(
      `${etc}/pg_hba.conf`,
      [
        'local all all peer',
        `host all ${Cluster.PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256`,
        'host all all 127.0.0.1/32 trust',
        'host all all ::1/128 trust',
        '',
      ].join('\n'),
    );
    // Restarts here are of the server process, not of the machine: the OS keeps what was written,
    // so fsync buys nothing and costs the shared machine a lot.
    appendFileSync(`${etc}/postgresql.conf`, "\nfsync = off\nlisten_addresses = '127.0.0.1'\nmax_connections = 200\n");
    this.start();
    run('psql', ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', 'postgres', '-qc',
      `CREATE ROLE ${Cluster.PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD '${Cluster.PASSWORD}'`]);
  }

  start(): void {
    run('pg_ctlcluster', ['--skip-systemctl-redirect', Cluster.VERSION, this.name, 'start']);
  }

  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    run('pg_ctlcluster', ['--skip-systemctl-redirect', Cluster.VERSION, this.name, 'stop', '-m', mode]);
  }

  restart(mode: 'fast' | 'immediate' = 'fast'): void {
    run('pg_ctlcluster', ['--skip-systemctl-redirect', Cluster.VERSION, this.name, 'restart', '-m', mode]);
  }

  /** Stops and removes the cluster, if it exists. */
  drop(): void {
    if (!existsSync(`/etc/postgresql/${Cluster.VERSION}/${this.name}`)) return;
    try {
      run('pg_dropcluster', ['--stop', Cluster.VERSION, this.name]);
    } catch (err) {
      process.stderr.write(`could not drop cluster ${this.name}: ${(err as Error).message}\n`);
    }
  }
}

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/${tool}`));
}
