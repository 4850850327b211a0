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
import { ConfigError, VaelabError, RegistrationError, showValue } from './errors';
import { VaeModel } from './model';
import { ParameterBudgetError, withParameterBudget } from './nn';
import { pluginConfig, schemaKeys, type PluginRegistry } from './plugin';

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

/** Formats whose keys set sizes: the settings a model too large for memory comes from. */
const SIZE_FORMATS: readonly unknown[] = ['nat', 'int', 'positive-int', 'nat-list', 'positive-int-list'];

/** The integer keys of the plugin selected for `slot` with their values: `encoder.mlp.hiddenSizes = [400]`. */
function sizeSettings(exp: Experiment, slot: Slot): string[] {
  const use = exp.config[slot].use;
  const def = exp.registry.get(slot, use);
  if (!def) return [];
  const cfg = exp.config[slot][use];
  return schemaKeys(def.schema)
    .filter(([, e]) => SIZE_FORMATS.includes(e.format))
    .map(([k]) => `${slot}.${use}.${k} = ${showValue(k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], cfg))}`);
}

/**
 * Resolves the model and objective, counting every weight against the parameter budget
 * (core/nn.ts) before it is allocated. Errors that plugins raise on purpose (config, shape) pass
 * through; a weight over the budget becomes a ConfigError naming the plugin, its module and its
 * size keys; any other failed resolution becomes a RegistrationError naming the slot, the plugin
 * and the module it came from. Plugins are built in data-flow order, so a plugin built as a
 * dependency of another (a likelihood the decoder asks for) is named as the one that asked.
 */
export function resolveParts(exp: Experiment, data: DataInfo): Parts {
  return withParameterBudget(() => resolveAll(exp, data));
}

function resolveAll(exp: Experiment, data: DataInfo): Parts {
  const container = buildContainer(exp.config, exp.registry, data);
  const get = <T>(slot: Slot): T => {
    try {
      return container.get<T>(SLOT_TOKENS[slot]);
    } catch (e) {
      if (e instanceof ParameterBudgetError) {
        const use = exp.config[slot].use;
        const sizes = sizeSettings(exp, slot);
        const source = exp.registry.get(slot, use)?.source ?? 'unknown module';
        throw new ConfigError(`${slot} "${use}" (${source}): too large: ${e.message}${sizes.length > 0 ? `; its sizes: ${sizes.join(', ')}` : ''}`);
      }
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

/** Frees every trainable variable and state buffer of the model and the objective, each once. */
export function disposeParts(parts: Pick<Parts, 'model' | 'objective'>): void {
  const { model, objective } = parts;
  const all = new Set([...model.variables().values(), ...model.state().values(), ...objective.variables().values(), ...(objective.state?.().values() ?? [])]);
  for (const v of all) v.dispose();
}
