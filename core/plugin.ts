/**
 * The plugin contract: a plugin is one file exporting its class, its config schema and a
 * registration made with `definePlugin`. Core turns registrations into inversify bindings.
 */
import type { Bind } from 'inversify';
import { FORMATS, enumRule } from './config/formats';
import { SLOTS, type Slot } from './contracts';
import { RegistrationError, didYouMean, quoteList, showValue } from './errors';

/** Value formats a plugin schema may use (see core/config/formats.ts for their rules). */
export const FORMAT_NAMES = [
  'nat',
  'int',
  'positive-int',
  'number',
  'positive-number',
  'non-negative-number',
  'probability',
  'boolean',
  'string',
  'nat-list',
  'positive-int-list',
  'number-list',
  'string-list',
] as const;

/** A named value format (see FORMAT_NAMES). */
export type FormatName = (typeof FORMAT_NAMES)[number];

/** One config key of a plugin: its doc, format (a named format or a list of allowed values) and default. */
export interface SchemaEntry {
  doc: string;
  format: FormatName | readonly (string | number)[];
  default: unknown;
}

/** A plugin's config schema: keys (camelCase) to entries; nesting is allowed for groups of keys. */
export interface PluginSchema {
  [key: string]: SchemaEntry | PluginSchema;
}

type ValueOf<E> = E extends { format: readonly (infer V)[] }
  ? V
  : E extends { format: 'boolean' }
    ? boolean
    : E extends { format: 'string' }
      ? string
      : E extends { format: 'nat-list' | 'positive-int-list' | 'number-list' }
        ? number[]
        : E extends { format: 'string-list' }
          ? string[]
          : E extends { format: FormatName }
            ? number
            : E extends PluginSchema
              ? ConfigOf<E>
              : never;

/** The validated config object a plugin receives for a schema. */
export type ConfigOf<S> = { readonly [K in keyof S]: ValueOf<S[K]> };

/** A constructor the container can instantiate. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Implementation<T = unknown> = new (...args: any[]) => T;

/** What a plugin's extra-bindings hook receives: inversify's bind, and the plugin's validated config. */
export interface PluginBindingContext {
  bind: Bind;
  config: unknown;
}

/** A registration: which slot, under which name, with which schema and class. */
export interface PluginDefinition<S extends PluginSchema = PluginSchema> {
  readonly slot: Slot;
  readonly name: string;
  readonly description: string;
  readonly schema: S;
  readonly implementation: Implementation;
  /**
   * Extra bindings of a composite plugin, loaded with its own container module: typically its
   * sub-components bound to a plugin-local token `whenTagged(key, value)`, which the plugin's
   * class then requests with `@inject(token) @tagged(key, value)` (e.g. one per ladder layer).
   */
  readonly bindings?: (ctx: PluginBindingContext) => void;
  /**
   * Set by a plugin that only makes sense on a model trained before it (a second stage, such as an
   * objective fitting a prior to a frozen model's codes): what it needs, completing
   * `<slot>.use: "<name>" ...`. A run selecting it with no `init.from` (a plain experiment, or the
   * first entry of `stages:`) is refused before training with this text.
   */
  readonly needsTrainedModel?: string;
  /** Where the registration came from (module path or package), filled in by the registry. */
  readonly source?: string;
}

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Declares a plugin. Checks the slot and name now so a bad registration fails at import. */
export function definePlugin<S extends PluginSchema>(def: PluginDefinition<S>): PluginDefinition<S> {
  if (!(SLOTS as readonly string[]).includes(def.slot)) {
    throw new RegistrationError(
      `definePlugin: slot ${JSON.stringify(def.slot)} of plugin ${JSON.stringify(def.name)} is not a slot. Allowed values: ${quoteList(SLOTS)}`,
    );
  }
  if (!KEBAB.test(def.name)) {
    throw new RegistrationError(
      `definePlugin: ${def.slot} name ${JSON.stringify(def.name)} must be kebab-case (lower-case words joined by "-")`,
    );
  }
  if (typeof def.implementation !== 'function') {
    throw new RegistrationError(`definePlugin: ${def.slot} "${def.name}" has no implementation class`);
  }
  checkSchema(def);
  return Object.freeze({ ...def });
}

/**
 * Checks a plugin's schema when it is declared, so that a typo in a format or a default its own
 * format refuses is reported to the plugin's author, naming the key, at import, and not to every
 * user of an experiment that lists the plugin (selected or not) as convict's error.
 */
function checkSchema(def: Pick<PluginDefinition, 'slot' | 'name' | 'schema'>): void {
  const walk = (node: unknown, prefix: string): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      throw new RegistrationError(`definePlugin: ${prefix}: must be an entry { doc, format, default } or a group of entries; got ${showValue(node)}`);
    }
    if (!('format' in node)) {
      for (const [k, child] of Object.entries(node)) walk(child, `${prefix}.${k}`);
      return;
    }
    const missing = ['doc', 'default'].filter((f) => !(f in node));
    if (missing.length > 0) throw new RegistrationError(`definePlugin: ${prefix}: an entry needs doc, format and default; ${missing.join(' and ')} missing`);
    const entry = node as SchemaEntry;
    if (Array.isArray(entry.format)) {
      const values = entry.format as readonly unknown[];
      if (values.length === 0 || !values.every((v) => typeof v === 'string' || typeof v === 'number')) {
        throw new RegistrationError(`definePlugin: ${prefix}: format must be a format name or a non-empty list of allowed strings or numbers; got ${showValue(values)}`);
      }
      if (!values.includes(entry.default as string | number)) {
        throw new RegistrationError(`definePlugin: ${prefix}: default ${enumRule(values as (string | number)[])}; got ${showValue(entry.default)}`);
      }
      return;
    }
    const format = entry.format as unknown;
    if (typeof format !== 'string' || !(FORMAT_NAMES as readonly string[]).includes(format)) {
      const hint = typeof format === 'string' ? didYouMean(format, FORMAT_NAMES) : undefined;
      throw new RegistrationError(
        `definePlugin: ${prefix}: unknown format ${showValue(format)}. Allowed values: ${quoteList(FORMAT_NAMES)} or a list of allowed values${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`,
      );
    }
    const { test, rule } = FORMATS[format as FormatName];
    if (!test(entry.default)) throw new RegistrationError(`definePlugin: ${prefix}: default ${rule}; got ${showValue(entry.default)}`);
  };
  if (typeof def.schema !== 'object' || def.schema === null || Array.isArray(def.schema)) {
    throw new RegistrationError(`definePlugin: ${def.slot} "${def.name}": schema must be a mapping of keys to entries; got ${showValue(def.schema)}`);
  }
  for (const [k, node] of Object.entries(def.schema)) walk(node, `${def.slot}.${def.name}.${k}`);
}

/** The injection token of a plugin's validated config sub-tree. */
export function pluginConfig(slot: Slot, name: string): symbol {
  return Symbol.for(`vae.config.${slot}.${name}`);
}

/** True when a schema node is an entry rather than a group. */
export function isEntry(node: SchemaEntry | PluginSchema): node is SchemaEntry {
  return typeof node === 'object' && node !== null && 'format' in node && 'default' in node && 'doc' in node;
}

/** Flattens a schema to dotted keys, for listings and messages. */
export function schemaKeys(schema: PluginSchema, prefix = ''): Array<[string, SchemaEntry]> {
  const out: Array<[string, SchemaEntry]> = [];
  for (const [k, node] of Object.entries(schema)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isEntry(node)) out.push([key, node]);
    else out.push(...schemaKeys(node, key));
  }
  return out;
}

/** The set of plugins known to one experiment: built-ins plus modules the experiment loads. */
export class PluginRegistry {
  private readonly bySlot = new Map<Slot, Map<string, PluginDefinition>>();

  constructor(defs: readonly PluginDefinition[] = [], source = 'plugins/index.ts') {
    for (const s of SLOTS) this.bySlot.set(s, new Map());
    this.addAll(defs, source);
  }

  /**
   * Adds registrations; a name registered twice in one slot is an error naming both sources. The
   * schema is checked again, for registrations not made with definePlugin or changed after it.
   */
  addAll(defs: readonly PluginDefinition[], source: string): void {
    for (const def of defs) {
      const slot = this.bySlot.get(def.slot);
      if (!slot) throw new RegistrationError(`definePlugin: unknown slot ${JSON.stringify(def.slot)}`);
      checkSchema(def);
      const prev = slot.get(def.name);
      if (prev) {
        throw new RegistrationError(
          `definePlugin: ${def.slot} "${def.name}" is registered twice (${prev.source ?? 'unknown'}, ${source})`,
        );
      }
      slot.set(def.name, Object.freeze({ ...def, source: def.source ?? source }));
    }
  }

  /** The plugin of `slot` called `name`, or undefined. */
  get(slot: Slot, name: string): PluginDefinition | undefined {
    return this.bySlot.get(slot)?.get(name);
  }

  /** Sorted names registered for a slot. */
  names(slot: Slot): string[] {
    return [...(this.bySlot.get(slot)?.keys() ?? [])].sort();
  }

  /** Every registration, slot by slot in slot order, names sorted. */
  all(): PluginDefinition[] {
    return SLOTS.flatMap((s) => this.names(s).map((n) => this.get(s, n)!));
  }

  /** A copy, so that an experiment's extra plugins do not leak into the next experiment. */
  clone(): PluginRegistry {
    const r = new PluginRegistry();
    for (const def of this.all()) r.addAll([def], def.source ?? 'unknown');
    return r;
  }
}

/**
 * Reads the plugin list out of a loaded module: `plugins` (an array of registrations), or a
 * default export of one. Throws a RegistrationError naming the module when there is none.
 */
export function pluginsOfModule(mod: unknown, source: string): PluginDefinition[] {
  const m = mod as { plugins?: unknown; default?: { plugins?: unknown } };
  const list = m?.plugins ?? m?.default?.plugins;
  if (!Array.isArray(list)) {
    throw new RegistrationError(`module ${JSON.stringify(source)} exports no "plugins" array`);
  }
  for (const d of list) {
    const def = d as Partial<PluginDefinition>;
    if (!def || typeof def !== 'object' || !def.slot || !def.name || !def.schema || !def.implementation) {
      throw new RegistrationError(
        `module ${JSON.stringify(source)} exports an entry that was not made with definePlugin`,
      );
    }
  }
  return list as PluginDefinition[];
}
