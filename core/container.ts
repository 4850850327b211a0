/**
 * Builds the inversify container of one experiment: every registered plugin loaded as a container
 * module that binds its class by name in its slot, its validated config sub-tree as a constant,
 * and its own extra bindings (tagged sub-components of composite plugins); and the selected
 * plugin of each slot bound as the slot's default, so that plugins can ask for each other
 * (`@inject(TOKENS.Encoder)`) without knowing which one the experiment chose.
 */
import { Container, ContainerModule } from 'inversify';
import type { ExperimentConfig, Experiment } from './config/experiment';
import {
  SLOTS,
  TOKENS,
  type DataInfo,
  type Decoder,
  type Encoder,
  type Latent,
  type Likelihood,
  type Objective,
  type Prior,
  type Slot,
} from './contracts';
import { VaelabError, RegistrationError } from './errors';
import { VaeModel } from './model';
import { pluginConfig, type PluginRegistry } from './plugin';

/** Token of each slot. */
export const SLOT_TOKENS: Record<Slot, symbol> = {
  encoder: TOKENS.Encoder,
  latent: TOKENS.Latent,
  decoder: TOKENS.Decoder,
  prior: TOKENS.Prior,
  likelihood: TOKENS.Likelihood,
  objective: TOKENS.Objective,
};

/** The resolved parts of an experiment. */
export interface Parts {
  container: Container;
  model: VaeModel;
  objective: Objective;
}

/** Binds everything an experiment needs. */
export function buildContainer(config: ExperimentConfig, registry: PluginRegistry, data: DataInfo): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  container.bind(TOKENS.DataInfo).toConstantValue(Object.freeze({ ...data }));
  container.bind(TOKENS.Seed).toConstantValue(config.seed);
  for (const slot of SLOTS) {
    const token = SLOT_TOKENS[slot];
    for (const name of registry.names(slot)) {
      const def = registry.get(slot, name)!;
      const pluginCfg = Object.freeze(structuredClone(config[slot][name] ?? {}));
      container.loadSync(
        new ContainerModule(({ bind }) => {
          bind(token).to(def.implementation).inSingletonScope().whenNamed(name);
          bind(pluginConfig(slot, name)).toConstantValue(pluginCfg);
          def.bindings?.({ bind, config: pluginCfg });
        }),
      );
    }
    const selected = config[slot].use;
    container
      .bind(token)
      .toDynamicValue((ctx) => ctx.get(token, { name: selected }))
      .inSingletonScope()
      .whenDefault();
  }
  container.bind(TOKENS.Model).to(VaeModel).inSingletonScope();
  return container;
}

/**
 * Resolves the model and objective. Errors that plugins raise on purpose (config, shape) pass
 * through; a failed resolution becomes a RegistrationError naming the slot, the plugin and the
 * module it came from.
 */
export function resolveParts(exp: Experiment, data: DataInfo): Parts {
  const container = buildContainer(exp.config, exp.registry, data);
  const get = <T>(slot: Slot): T => {
    try {
      return container.get<T>(SLOT_TOKENS[slot]);
    } catch (e) {
      if (e instanceof VaelabError) throw e;
      const msg = (e as Error).message.split('\n')[0];
      const use = exp.config[slot].use;
      throw new RegistrationError(`${slot} "${use}" (${exp.registry.get(slot, use)?.source ?? 'unknown module'}): cannot be built: ${msg}`);
    }
  };
  // Resolve in data-flow order so that shape errors name the earliest mismatch.
  get<Encoder>('encoder');
  get<Latent>('latent');
  get<Decoder>('decoder');
  get<Prior>('prior');
  get<Likelihood>('likelihood');
  const objective = get<Objective>('objective');
  const model = container.get<VaeModel>(TOKENS.Model);
  return { container, model, objective };
}
