/**
 * The public API of vaelab's core, for plugins and tools. Plugins import from here only.
 */
import 'reflect-metadata';

export * from './contracts';
export * from './errors';
export * from './plugin';
export * from './rng';
export * from './nn';
export * from './math';
export { VaeModel, disposeLatentSample, type ForwardPass, type KlKind } from './model';
