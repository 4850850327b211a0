/**
 * An assertion for the error paths of a plugin (a config its schema or constructor refuses, data
 * it cannot take): the error's class and its whole message, exactly. Written with node:assert, so
 * it needs no assertion library and works under any runner.
 */
import { AssertionError } from 'node:assert';

/** "<Name>: <message>" of an Error, String() of anything else. */
function describeThrown(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Calls `fn` and asserts that it throws an instance of `cls` whose message is exactly `message`,
 * e.g. `expectThrowExact(() => experimentOf({ prior: { use: 'laplace', laplace: { scale: 0 } } },
 * { plugins }), ConfigError, 'prior.laplace.scale: must be a positive number; got 0')`. Otherwise
 * throws node:assert's AssertionError: when nothing is thrown, when the error is of another class
 * (its name and message shown), or when the message differs (`actual` and `expected` set to both
 * messages, so that runners show the difference). For a synchronous `fn`; await a promise yourself.
 */
export function expectThrowExact(fn: () => unknown, cls: new (...args: never[]) => Error, message: string): void {
  let threw = false;
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  const wanted = `a ${cls.name} with message ${JSON.stringify(message)}`;
  if (!threw) {
    throw new AssertionError({ message: `expected ${wanted}; nothing was thrown`, operator: 'expectThrowExact' });
  }
  if (!(thrown instanceof cls)) {
    const error = new AssertionError({ message: `expected ${wanted}; got ${describeThrown(thrown)}`, operator: 'expectThrowExact' });
    error.cause = thrown;
    throw error;
  }
  if (thrown.message !== message) {
    const error = new AssertionError({
      message: `expected ${cls.name} message\n  ${message}\ngot\n  ${thrown.message}`,
      actual: thrown.message,
      expected: message,
      operator: 'expectThrowExact',
    });
    error.cause = thrown;
    throw error;
  }
}
