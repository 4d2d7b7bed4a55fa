/**
 * The error a request that must fail rejects with. A request that succeeds fails the test here
 * (the check stands outside the `try`, so it is never taken for the awaited error).
 */
export async function failure(promise: Promise<unknown>): Promise<Error> {
  let answered: unknown;
  try {
    answered = await promise;
  } catch (error) {
    return error as Error;
  }
  const status = (answered as { statusCode?: number } | undefined)?.statusCode;
  throw new Error(`the request was expected to fail, it was answered${status === undefined ? '' : ` ${status}`}`);
}
