/**
 * The conformance checks as test blocks, for any runner with describe/it: mocha's and jasmine's
 * globals by default, or the functions given (node:test's `describe` and `it`, vitest's, ...).
 */
import type { PluginDefinition } from '../core/plugin';
import { conformanceChecks, type ConformanceCase, type ConformanceCheck, type ConformanceOptions } from './conformance';

/** The two functions the adapter needs from a test runner. */
export interface TestApi {
  describe(title: string, fn: () => void): unknown;
  it(title: string, fn: () => void | Promise<void>): unknown;
}

/** Options of describeConformance: the kit's, plus the runner's describe/it when they are not globals. */
export interface DescribeConformanceOptions extends ConformanceOptions {
  /** describe and it of the runner; default: the global ones (mocha, jasmine, vitest with globals). */
  api?: TestApi;
  /** Timeout in ms set on the slow checks through mocha's `this.timeout` where it exists (default 60 000). */
  slowTimeout?: number;
}

function globalApi(): TestApi {
  const g = globalThis as unknown as Partial<TestApi>;
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new TypeError(
      "describeConformance: no global describe/it (mocha, jasmine); pass them as options.api, e.g. import { describe, it } from 'node:test', or run conformanceChecks(...) yourself",
    );
  }
  return { describe: g.describe.bind(globalThis), it: g.it.bind(globalThis) };
}

/**
 * Registers the conformance checks of `plugin` as test blocks: one `describe` per plugin
 * ("conformance: <slot> "<name>""), one per case, an `it` per check, and the training check in
 * a nested describe titled "training @slow" (run alone with mocha's `--grep @slow`).
 */
export function describeConformance(plugin: PluginDefinition, cases: readonly ConformanceCase[], options: DescribeConformanceOptions = {}): void {
  const api = options.api ?? globalApi();
  const checks = conformanceChecks(plugin, cases, options);
  const timeout = options.slowTimeout ?? 60_000;
  const register = (c: ConformanceCheck) =>
    api.it(c.name, function (this: unknown) {
      const ctx = this as { timeout?: (ms: number) => void } | undefined;
      if (c.slow && typeof ctx?.timeout === 'function') ctx.timeout(timeout);
      c.run();
    });
  api.describe(`conformance: ${plugin.slot} "${plugin.name}"`, () => {
    for (const title of [...new Set(checks.map((c) => c.case))]) {
      const mine = checks.filter((c) => c.case === title);
      api.describe(title, () => {
        mine.filter((c) => !c.slow).forEach(register);
        const slow = mine.filter((c) => c.slow);
        if (slow.length > 0) api.describe('training @slow', () => slow.forEach(register));
      });
    }
  });
}
