import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A program some tests run for real, and the Debian package the setup command installs it from. */
export interface SystemTool {
  readonly package: string;
  /** What the tests use it as, in the failure message. */
  readonly use: string;
  /** An environment variable naming the binary, checked first. */
  readonly env?: string;
}

/** Every program the tests run (the README and scripts/setup.sh list the same packages). */
export const SYSTEM_TOOLS = {
  dnsmasq: { package: 'dnsmasq-base', use: 'a real DNS server (DNS discovery)', env: 'DNSMASQ' },
  'redis-server': { package: 'redis-server', use: 'a real Redis (rate limits shared between meshes)', env: 'REDIS_SERVER' },
  prometheus: { package: 'prometheus', use: "a real Prometheus scraping the mesh's metrics", env: 'PROMETHEUS' },
  ss: { package: 'iproute2', use: "reading the kernel's TCP keep-alive timers" },
  openssl: { package: 'openssl', use: 'checking the certificates the development CA mints' },
} as const satisfies Record<string, SystemTool>;

export type SystemToolName = keyof typeof SYSTEM_TOOLS;

/** Where to look: PATH, then the sbin directories Debian puts servers in (often not on a user's PATH). */
function searchDirs(env: NodeJS.ProcessEnv): string[] {
  return [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Thrown, once per test file, when a program its tests need is not installed. */
export class MissingSystemToolError extends Error {
  constructor(name: SystemToolName, where: string) {
    const tool: SystemTool = SYSTEM_TOOLS[name];
    super(
      `${name} is not installed (${where}); these tests need it: ${tool.use}. ` +
        `Install it with the setup command, \`npm run setup\` (it runs \`apt-get install -y ${tool.package}\`).`,
    );
    this.name = 'MissingSystemToolError';
  }
}

/** The path of `name`'s binary; throws {@link MissingSystemToolError} saying what to install. */
export function systemTool(name: SystemToolName, env: NodeJS.ProcessEnv = process.env): string {
  const tool: SystemTool = SYSTEM_TOOLS[name];
  const fromEnv = tool.env ? env[tool.env] : undefined;
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv;
    throw new MissingSystemToolError(name, `$${tool.env} is ${fromEnv}, which is not an executable`);
  }
  const found = searchDirs(env)
    .map((dir) => join(dir, name))
    .find(executable);
  if (found) return found;
  throw new MissingSystemToolError(name, 'not on PATH nor in /usr/sbin or /sbin');
}

/**
 * Call at the top of a test file whose tests run these programs: when one is missing, the file
 * fails once, before any test or hook runs, with the install command, instead of each test
 * failing on its own and teardown failing on what never started.
 */
export function requireSystemTools(...names: SystemToolName[]): void {
  for (const name of names) systemTool(name);
}
