/** Weights & Biases logging (docs/tracking.md): the trainer callback, the outbox, `wandb-sync`. */
export { settleWandb, setWandbFlag, sweepGroupOf, wandbCallbacks, wandbConfigProblems, wandbEnabled, WandbLogger, type WandbConfig } from './logger';
export { registerWandbCommands } from './cli';
export { wandbSync, type SyncResult } from './sync';
