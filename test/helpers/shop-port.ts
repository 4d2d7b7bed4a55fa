import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// The shop examples (the demo, the OTel example) listen on 127.0.0.2-9:9080, a fixed port, as
// their YAML says. Tests that run them take this machine-wide lock, so two of them (in parallel
// files, or two suites on one machine) never race for the port.
const LOCK = join(tmpdir(), 'sidecarless-shop-9080.lock');
const STALE_MS = 5 * 60_000;

/** Runs `fn` while holding the shop port; waits for whoever holds it. */
export async function withShopPort<T>(fn: () => T | Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // Released meanwhile.
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
