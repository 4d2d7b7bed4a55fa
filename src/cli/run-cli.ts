import { certsCommand, CERTS_USAGE } from './certs-command.js';
import { explainCommand, EXPLAIN_USAGE } from './explain-command.js';
import { inspectCommand, INSPECT_USAGE } from './inspect-command.js';
import { UsageError } from './usage-error.js';
import { validateCommand, VALIDATE_USAGE } from './validate-command.js';

/** Where a command writes; injectable so tests can run commands in-process. */
export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
}

const USAGE = `Usage: sidecarless <command> [options]

Commands:
  validate <file|dir>...          check Istio resources as the mesh would load them
  explain --config <path> <METHOD> <URL>
                                  show how one request would be routed
  inspect [clusters|routes|endpoints|config|dump] [--url <admin url>]
                                  show what a running mesh holds (its admin server)
  certs ca|workload --out <dir>   a development CA and workload certificates for local mTLS
                                  (not for production)

${VALIDATE_USAGE}

${EXPLAIN_USAGE}

${INSPECT_USAGE}

${CERTS_USAGE}`;

/** Runs the CLI and returns its exit code: 0 ok, 1 invalid configuration, 2 usage error. */
export async function runCli(argv: readonly string[], io: CommandIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'validate':
        return await validateCommand(rest, io);
      case 'explain':
        return await explainCommand(rest, io);
      case 'inspect':
        return await inspectCommand(rest, io);
      case 'certs':
        return await certsCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`sidecarless: ${error.message}\nRun 'sidecarless --help' for usage.`);
      return 2;
    }
    io.err(`sidecarless: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
