/**
 * Experiment files: reading (YAML or JSON), command-line overrides, composing one convict
 * schema from the core keys and every registered plugin's schema, and strict validation with
 * messages that name the file, the key, the bad value and what is allowed.
 *
 * Order of precedence: schema defaults <- experiment file <- overrides (`--set k=v`, sweeps).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import convict from 'convict';
import * as YAML from 'yaml';
import { SLOTS, type Slot } from '../contracts';
import { ConfigError, RegistrationError, didYouMean, unknownValueMessage } from '../errors';
import {
  type ConfigOf,
  type PluginSchema,
  PluginRegistry,
  isEntry,
  pluginsOfModule,
  schemaKeys,
} from '../plugin';
import { coreSchema } from './core-schema';
import { ModuleLoadError, loadModule, resolvePluginModule } from './plugin-modules';
import { RULE_MARK, enumRule, registerFormats } from './formats';

/** Settings of one slot: the selected plugin and every plugin's sub-tree (defaults filled in). */
export interface SlotConfig {
  use: string;
  [plugin: string]: unknown;
}

/** A validated experiment: core keys plus one SlotConfig per slot. */
export type ExperimentConfig = ConfigOf<typeof coreSchema> & { readonly [S in Slot]: SlotConfig };

/** A loaded experiment: its config, the plugins it can use and where it came from. */
export interface Experiment {
  config: ExperimentConfig;
  registry: PluginRegistry;
  /** The experiment file ("<inline>" when built from an object). */
  file: string;
}

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a YAML or JSON experiment file into a plain object. */
export function readExperimentFile(file: string): Raw {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? 'no such file' : `cannot read file (${code ?? String(e)})`, file);
  }
  const ext = path.extname(file).toLowerCase();
  let data: unknown;
  if (ext === '.json') {
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`malformed JSON: ${(e as Error).message}`, file);
    }
  } else {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) {
      const err = doc.errors[0];
      const pos = err.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
      const reason = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '');
      throw new ConfigError(`malformed YAML: ${where}${reason}`, file);
    }
    data = doc.toJS();
  }
  if (data === null || data === undefined) data = {};
  if (!isObject(data)) throw new ConfigError(`the top level must be a mapping of keys to values; got ${describe(data)}`, file);
  return data;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Applies `dotted.key=value` overrides; values are read as YAML scalars or flow lists. */
export function applyOverrides(raw: Raw, sets: readonly string[]): Raw {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${JSON.stringify(s)}: expected dotted.key=value`);
    const key = s.slice(0, eq).trim();
    const text = s.slice(eq + 1);
    let value: unknown;
    try {
      value = text === '' ? '' : YAML.parse(text);
    } catch {
      value = text;
    }
    setPath(out, key, value);
  }
  return out;
}

/** Sets a dotted path in a plain object, creating intermediate mappings. */
export function setPath(obj: Raw, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur: Raw = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as Raw;
  }
  cur[parts[parts.length - 1]] = value;
}

/** Reads a dotted path of a plain object. */
export function getPath(obj: unknown, key: string): unknown {
  let cur: unknown = obj;
  for (const p of key.split('.')) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

/**
 * Loads the plugin modules an experiment names under `plugins:` into the registry. TypeScript
 * modules are type-checked and compiled on the fly (core/config/plugin-modules.ts); a module that
 * does not compile or throws while loading is reported with its file, line and column.
 */
export function loadPluginModules(raw: Raw, registry: PluginRegistry, file: string): void {
  const list = raw.plugins;
  if (list === undefined) return;
  if (!Array.isArray(list) || !list.every((e) => typeof e === 'string')) {
    throw new ConfigError(`plugins: must be a list of module paths or package names; got ${JSON.stringify(list)}`, file);
  }
  const base = file === '<inline>' ? process.cwd() : path.dirname(path.resolve(file));
  list.forEach((spec: string, i) => {
    let resolved: string;
    try {
      resolved = resolvePluginModule(spec, base);
    } catch {
      throw new ConfigError(`plugins[${i}]: cannot find module ${JSON.stringify(spec)} (looked from ${base})`, file);
    }
    let mod: unknown;
    try {
      mod = loadModule(resolved);
    } catch (e) {
      if (!(e instanceof ModuleLoadError)) throw e;
      throw new ConfigError(
        e.problems.map((p) => `plugins[${i}]: module ${JSON.stringify(spec)} failed to load: ${p}`),
        file,
      );
    }
    try {
      registry.addAll(pluginsOfModule(mod, spec), spec);
    } catch (e) {
      if (e instanceof RegistrationError) throw new ConfigError(`plugins[${i}]: ${e.message}`, file);
      throw e;
    }
  });
}

type ConvictNode = { [k: string]: ConvictNode | { doc: string; format: unknown; default: unknown } };

function toConvict(schema: PluginSchema): ConvictNode {
  const out: ConvictNode = {};
  for (const [k, node] of Object.entries(schema)) {
    if (isEntry(node)) {
      const format = Array.isArray(node.format) ? node.format : `vae:${node.format as string}`;
      out[k] = { doc: node.doc, format, default: structuredClone(node.default) };
    } else {
      out[k] = toConvict(node as PluginSchema);
    }
  }
  return out;
}

/** One schema for an experiment: the core keys plus, per slot, `use` and every plugin's sub-tree. */
export function composeSchema(registry: PluginRegistry): PluginSchema {
  const schema: Record<string, unknown> = structuredClone(coreSchema) as unknown as Record<string, unknown>;
  for (const slot of SLOTS) {
    const names = registry.names(slot);
    const node: Record<string, unknown> = {
      use: { doc: `the ${slot} plugin`, format: names.length > 0 ? names : ['(none registered)'], default: names[0] ?? '' },
    };
    for (const n of names) node[n] = registry.get(slot, n)!.schema;
    schema[slot] = node;
  }
  return schema as PluginSchema;
}

/** Finds the schema node at a dotted path (a group), or undefined. */
function nodeAt(schema: PluginSchema, parts: string[]): PluginSchema | undefined {
  let cur: PluginSchema | undefined = schema;
  for (const p of parts) {
    const next: PluginSchema | import('../plugin').SchemaEntry | undefined = cur?.[p];
    if (!next || isEntry(next)) return undefined;
    cur = next;
  }
  return cur;
}

/** Rewrites convict's report lines into vaelab's message form. */
function reformat(line: string, schema: PluginSchema): string {
  const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
  if (undeclared) {
    const full = undeclared[1].split('.');
    let depth = 1;
    while (depth < full.length && nodeAt(schema, full.slice(0, depth))) depth++;
    const key = full.slice(0, depth).join('.');
    const parts = key.split('.');
    const leaf = parts[parts.length - 1];
    const parentParts = parts.slice(0, -1);
    const parent = nodeAt(schema, parentParts);
    const siblings = parent ? Object.keys(parent) : [];
    const hint = didYouMean(leaf, siblings);
    const tail = hint ? `. Did you mean ${JSON.stringify(hint)}?` : '';
    const isPlugin = parentParts.length >= 2 && (SLOTS as readonly string[]).includes(parentParts[0]);
    if (isPlugin) {
      return `${key}: not declared in the schema of plugin ${JSON.stringify(parentParts[1])} (keys: ${siblings.join(', ')})${tail}`;
    }
    if (parentParts.length === 1 && (SLOTS as readonly string[]).includes(parentParts[0])) {
      const plugins = siblings.filter((s) => s !== 'use');
      return `${key}: not a plugin of slot ${parentParts[0]} (plugins: ${plugins.join(', ')}; select one with ${parentParts[0]}.use)${tail}`;
    }
    return `${key}: not a known key${siblings.length ? ` (keys here: ${siblings.join(', ')})` : ''}${tail}`;
  }
  const ours = new RegExp(`^(.+?): ${RULE_MARK}(.*)${RULE_MARK}`, 's').exec(line);
  if (ours) return `${ours[1]}: ${ours[2]}`;
  const oneOf = /^(.+?): must be one of the possible values: (\[.*\]): value was (.*)$/s.exec(line);
  if (oneOf) {
    const allowed = JSON.parse(oneOf[2]) as string[];
    let got: unknown = oneOf[3];
    try {
      got = JSON.parse(oneOf[3]);
    } catch {
      /* keep the text */
    }
    const hint = typeof got === 'string' ? didYouMean(got, allowed.map(String)) : undefined;
    return `${oneOf[1]}: ${enumRule(allowed)}; got ${oneOf[3]}${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`;
  }
  return line;
}

/**
 * Validates an experiment object against the registry's composed schema.
 * Throws one ConfigError listing every problem, naming `file`.
 */
export function resolveConfig(raw: Raw, registry: PluginRegistry, file: string): ExperimentConfig {
  registerFormats();
  const problems: string[] = [];
  for (const slot of SLOTS) {
    const node = raw[slot];
    const names = registry.names(slot);
    if (node === undefined) {
      problems.push(`${slot}.use: missing; choose a ${slot} plugin. Allowed values: ${names.map((n) => JSON.stringify(n)).join(', ')}`);
      continue;
    }
    if (!isObject(node)) {
      problems.push(`${slot}: must be a mapping with a "use" key; got ${describe(node)}`);
      continue;
    }
    for (const [key, value] of Object.entries(node)) {
      const def = key === 'use' ? undefined : registry.get(slot, key);
      if (!def) continue;
      if (!isObject(value)) {
        problems.push(`${slot}.${key}: must be a mapping of plugin "${key}"'s keys; got ${describe(value)}`);
      } else if (Object.keys(def.schema).length === 0) {
        for (const k of Object.keys(value)) problems.push(`${slot}.${key}.${k}: not declared in the schema of plugin "${key}" (it has no keys)`);
      }
    }
    const use = node.use;
    if (typeof use !== 'string') {
      problems.push(`${slot}.use: missing; choose a ${slot} plugin. Allowed values: ${names.map((n) => JSON.stringify(n)).join(', ')}`);
    } else if (!registry.get(slot, use)) {
      problems.push(unknownValueMessage(`${slot}.use`, 'plugin', use, names));
    }
  }
  const schema = composeSchema(registry);
  const conf = convict(toConvict(schema) as convict.Schema<unknown>);
  const clean = structuredClone(raw);
  for (const slot of SLOTS) {
    const node = clean[slot];
    if (isObject(node) && typeof node.use === 'string' && !registry.get(slot, node.use)) delete node.use;
    if (!isObject(node)) delete clean[slot];
    // Problems of plugin sub-trees already reported above are not reported twice by convict.
    else for (const [k, v] of Object.entries(node)) if (k !== 'use' && registry.get(slot, k) && (!isObject(v) || Object.keys(registry.get(slot, k)!.schema).length === 0)) delete node[k];
  }
  try {
    conf.load(clean);
    conf.validate({ allowed: 'strict' });
  } catch (e) {
    const lines = (e as Error).message.split('\n').filter((l) => l.trim().length > 0);
    for (const l of lines) {
      const p = reformat(l, schema);
      if (!problems.includes(p)) problems.push(p);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems, file === '<inline>' ? undefined : file);
  const config = conf.getProperties() as unknown as ExperimentConfig;
  if (!config.name) {
    (config as { name: string }).name = file === '<inline>' ? 'experiment' : path.basename(file).replace(/\.(ya?ml|json)$/i, '');
  }
  return config;
}

/**
 * Loads an experiment file: reads it, applies overrides, loads its extra plugin modules into a
 * copy of `builtins`, and validates the result.
 */
export function loadExperiment(
  file: string,
  builtins: PluginRegistry,
  overrides: readonly string[] = [],
): Experiment {
  const raw = applyOverrides(readExperimentFile(file), overrides);
  return experimentFromObject(raw, builtins, file);
}

/** As loadExperiment, from an object already in memory (sweeps, tests). */
export function experimentFromObject(raw: Raw, builtins: PluginRegistry, file = '<inline>'): Experiment {
  const registry = builtins.clone();
  loadPluginModules(raw, registry, file);
  return { config: resolveConfig(raw, registry, file), registry, file };
}

/** Every key of the composed schema with its default, for `vaelab plugins` and docs. */
export function describeSchema(schema: PluginSchema): Array<{ key: string; doc: string; default: unknown; format: string }> {
  return schemaKeys(schema).map(([key, e]) => ({
    key,
    doc: e.doc,
    default: e.default,
    format: Array.isArray(e.format) ? e.format.map((v) => JSON.stringify(v)).join(' | ') : String(e.format),
  }));
}
