/**
 * Where the mesh writes structured events: pino's shape (object first, then message), so a pino
 * logger (or a child of one) works as is. Every event object has a stable `event` field.
 */
export interface MeshLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Console's methods, message first; `console` itself is one. */
export interface ConsoleLike {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

const noop = (): void => undefined;

/** The default: the mesh says nothing. */
export const silentLogger: MeshLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/**
 * Adapts console (or anything console-shaped) to {@link MeshLogger}: the message first, then the
 * event object, so `console.warn` prints `sidecarless: <msg> { event: ..., ... }`.
 */
export function consoleLogger(target: ConsoleLike = console): MeshLogger {
  const write =
    (level: keyof ConsoleLike) =>
    (obj: object, msg?: string): void => {
      target[level](`sidecarless: ${msg ?? ''}`, obj);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
