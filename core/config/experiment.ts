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
import { ConfigError, RegistrationError, SHOWN_CHARS, didYouMean, showValue, unknownValueMessage } from '../errors';
import {
  type ConfigOf,
  type FormatName,
  type PluginSchema,
  PluginRegistry,
  isEntry,
  pluginsOfModule,
  schemaKeys,
} from '../plugin';
import { coreSchema } from './core-schema';
import { RENAMED_KEYS } from './migrate';
import { ModuleLoadError, loadModule, resolvePluginModule } from './plugin-modules';
import { FORMATS, RULE_MARK, enumRule, registerFormats } from './formats';

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

/**
 * At most this many values in a YAML document (mapping keys and values, list items), counting
 * every copy an alias (`*name`) makes: an experiment holds a few hundred, and a "billion laughs"
 * document, whose aliases nest, would expand to billions.
 */
export const MAX_YAML_VALUES = 100_000;

/** At most this many levels of mappings and lists nested in one another (an experiment uses 4 or 5). */
export const MAX_NESTING = 32;

/**
 * The number of values of a YAML document with its aliases expanded, counted without expanding
 * them: an anchored node's count is kept and added again at each alias to it.
 */
function expandedSize(doc: YAML.Document): number {
  const anchors = new Map<string, number>();
  const count = (node: unknown): number => {
    if (YAML.isAlias(node)) return anchors.get(node.source) ?? 1;
    let n = 1;
    if (YAML.isMap(node)) for (const pair of node.items) n += count(pair.key) + count(pair.value);
    else if (YAML.isSeq(node)) for (const item of node.items) n += count(item);
    else if (YAML.isPair(node)) n += count(node.key) + count(node.value);
    const anchor = (node as { anchor?: string } | null)?.anchor;
    // An anchor defined again applies to the aliases after it, as in YAML itself.
    if (anchor) anchors.set(anchor, n);
    return n;
  };
  return count(doc.contents);
}

/** The plain value of a parsed YAML document (no errors), or the problem that stops it. */
function yamlValue(doc: YAML.Document, what: 'document' | 'value'): { value: unknown } | { problem: string } {
  const size = expandedSize(doc);
  if (size > MAX_YAML_VALUES) {
    return { problem: `the YAML ${what} holds ${size} values with its aliases (*name) expanded; at most ${MAX_YAML_VALUES} are allowed` };
  }
  try {
    // The expansion is bounded above, so the yaml package's own alias guard (an estimate) is off.
    return { value: doc.toJS({ maxAliasCount: -1 }) };
  } catch (e) {
    return { problem: `malformed YAML: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * The first place where mappings and lists nest more than MAX_NESTING deep, as a problem
 * `path: ...`, or undefined. Iterative, so that a deep value cannot overflow the stack here.
 */
export function nestingProblem(value: unknown): string | undefined {
  const stack: Array<[unknown, string, number]> = [[value, '', 0]];
  while (stack.length > 0) {
    const [v, at, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > MAX_NESTING) {
      const where = at.length <= SHOWN_CHARS ? at : `${at.slice(0, SHOWN_CHARS)}...`;
      return `${where}: nested more than ${MAX_NESTING} levels deep (mappings and lists); at most ${MAX_NESTING} are allowed`;
    }
    const entries: Array<[string, unknown]> = Array.isArray(v)
      ? v.map((e, i) => [`${at}[${i}]`, e])
      : Object.entries(v).map(([k, e]) => [at ? `${at}.${k}` : k, e]);
    for (let i = entries.length - 1; i >= 0; i--) stack.push([entries[i][1], entries[i][0], depth + 1]);
  }
  return undefined;
}

/**
 * Reads a YAML or JSON experiment file into a plain object. A YAML document may hold at most
 * MAX_YAML_VALUES values with its aliases expanded, and either kind at most MAX_NESTING levels.
 */
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
      // The yaml parser recurses once per level: a deep enough document overflows its stack.
      if (err.message.includes('Maximum call stack size exceeded')) {
        throw new ConfigError(`malformed YAML: nested too deeply to read; at most ${MAX_NESTING} levels are allowed`, file);
      }
      const pos = err.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
      const reason = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '');
      throw new ConfigError(`malformed YAML: ${where}${reason}`, file);
    }
    const read = yamlValue(doc, 'document');
    if ('problem' in read) throw new ConfigError(read.problem, file);
    data = read.value;
  }
  const deep = nestingProblem(data);
  if (deep) throw new ConfigError(deep, file);
  if (data === null || data === undefined) data = {};
  if (!isObject(data)) throw new ConfigError(`the top level must be a mapping of keys to values; got ${describe(data)}`, file);
  return data;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return `${typeof v} ${showValue(v)}`;
}

/** Applies `dotted.key=value` overrides; values are read as YAML scalars or flow lists. */
export function applyOverrides(raw: Raw, sets: readonly string[]): Raw {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${JSON.stringify(s)}: expected dotted.key=value`);
    const key = s.slice(0, eq).trim();
    const text = s.slice(eq + 1);
    let value: unknown = text;
    const doc = text === '' ? undefined : YAML.parseDocument(text);
    // Text that is not YAML (say, a: b: c) is taken as the string itself.
    if (doc && doc.errors.length === 0) {
      const read = yamlValue(doc, 'value');
      if ('problem' in read) throw new ConfigError(`--set ${JSON.stringify(key)}: ${read.problem}`);
      value = read.value;
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
      throw new ConfigError(`plugins[${i}]: cannot find module ${JSON.stringify(spec)} (looked from ${base})${relativePathHint(spec, base)}`, file);
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

/**
 * For a module name that is not found as a package but is a file next to the experiment (say
 * `my-plugin.ts` for ./my-plugin.ts): the reminder that relative paths start with "./".
 */
function relativePathHint(spec: string, base: string): string {
  if (spec.startsWith('.') || path.isAbsolute(spec)) return '';
  const full = path.resolve(base, spec);
  const found = ['', '.ts', '.js'].some((ext) => fs.existsSync(full + ext));
  return found ? `; relative paths start with "./": did you mean ${JSON.stringify(`./${spec}`)}?` : '';
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
    // Own keys only: `constructor` or `__proto__` in an experiment is not a group of the schema.
    const next: PluginSchema | import('../plugin').SchemaEntry | undefined = cur && Object.prototype.hasOwnProperty.call(cur, p) ? cur[p] : undefined;
    if (!next || isEntry(next)) return undefined;
    cur = next;
  }
  return cur;
}

/** A key as messages show it: cut after SHOWN_CHARS characters, with its length. */
const showKey = (key: string): string => (key.length <= SHOWN_CHARS ? key : `${key.slice(0, SHOWN_CHARS)}... (${key.length} characters)`);

/** Rewrites convict's report lines into vaelab's message form. */
function reformat(line: string, schema: PluginSchema): string {
  const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
  if (undeclared && Object.hasOwn(RENAMED_KEYS, undeclared[1])) return `${undeclared[1]}: renamed; use ${RENAMED_KEYS[undeclared[1]]}`;
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
      return `${showKey(key)}: not declared in the schema of plugin ${JSON.stringify(parentParts[1])} (keys: ${siblings.join(', ')})${tail}`;
    }
    if (parentParts.length === 1 && (SLOTS as readonly string[]).includes(parentParts[0])) {
      const plugins = siblings.filter((s) => s !== 'use');
      return `${showKey(key)}: not a plugin of slot ${parentParts[0]} (plugins: ${plugins.join(', ')}; select one with ${parentParts[0]}.use)${tail}`;
    }
    return `${showKey(key)}: not a known key${siblings.length ? ` (keys here: ${siblings.join(', ')})` : ''}${tail}`;
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
    const shown = got === oneOf[3] && oneOf[3].length > SHOWN_CHARS ? `${oneOf[3].slice(0, SHOWN_CHARS)}...` : got === oneOf[3] ? oneOf[3] : showValue(got);
    return `${oneOf[1]}: ${enumRule(allowed)}; got ${shown}${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`;
  }
  return line;
}

/**
 * Reports (and removes from `raw`) values whose nesting does not match the schema: a mapping
 * where the schema has one value, which convict would merge into the default unchecked
 * (`hiddenSizes: { a: 1 }` left [400] in force), and a single value where the schema has a
 * group of keys, for which convict lists every key of the group as missing. An empty group
 * (`train:` with nothing under it, read as null) keeps its defaults. Also reports keys named like
 * an object's own properties (`constructor`, `__proto__`), which convict's strict check misses.
 */
function mismatchedNesting(raw: Raw, schema: PluginSchema, prefix: string, problems: string[], root: PluginSchema = schema): void {
  for (const [k, v] of Object.entries(raw)) {
    const key = `${prefix}${k}`;
    const node = Object.prototype.hasOwnProperty.call(schema, k) ? schema[k] : undefined;
    if (!node) {
      // Names every object has (constructor, __proto__, toString) slip past convict's strict check.
      if (k in schema) {
        problems.push(reformat(`configuration param '${key}' not declared in the schema`, root));
        delete raw[k];
      }
      continue;
    }
    if (isEntry(node)) {
      if (!isObject(v)) continue;
      const rule = Array.isArray(node.format) ? enumRule(node.format) : FORMATS[node.format as FormatName].rule;
      problems.push(`${key}: ${rule}; got ${showValue(v)}`);
      delete raw[k];
    } else if (v === null) {
      delete raw[k];
    } else if (!isObject(v)) {
      problems.push(`${key}: must be a mapping of keys (${Object.keys(node).join(', ')}); got ${describe(v)}`);
      delete raw[k];
    } else {
      mismatchedNesting(v, node, `${key}.`, problems, root);
    }
  }
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
    if (use === undefined || use === null) {
      problems.push(`${slot}.use: missing; choose a ${slot} plugin. Allowed values: ${names.map((n) => JSON.stringify(n)).join(', ')}`);
    } else if (typeof use !== 'string') {
      problems.push(`${slot}.use: ${enumRule(names)}; got ${showValue(use)}`);
    } else if (!registry.get(slot, use)) {
      problems.push(unknownValueMessage(`${slot}.use`, 'plugin', use, names));
    }
  }
  const schema = composeSchema(registry);
  const conf = convict(toConvict(schema) as convict.Schema<unknown>);
  const clean = structuredClone(raw);
  for (const slot of SLOTS) {
    const node = clean[slot];
    if (isObject(node) && !(typeof node.use === 'string' && registry.get(slot, node.use))) delete node.use;
    if (!isObject(node)) delete clean[slot];
    // Problems of plugin sub-trees already reported above are not reported twice by convict.
    else for (const [k, v] of Object.entries(node)) if (k !== 'use' && registry.get(slot, k) && (!isObject(v) || Object.keys(registry.get(slot, k)!.schema).length === 0)) delete node[k];
  }
  mismatchedNesting(clean, schema, '', problems);
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
  const deep = nestingProblem(raw);
  if (deep) throw new ConfigError(deep, file === '<inline>' ? undefined : file);
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
