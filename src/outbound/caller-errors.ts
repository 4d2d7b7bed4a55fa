import { InvalidRequestError } from '../errors.js';

/** The error a caller gets for a request undici refused as given (`cause`: undici's error). */
export function invalidRequest(cause: Error): InvalidRequestError {
  return new InvalidRequestError(`the request cannot be sent as given: ${cause.message}`, { cause });
}
