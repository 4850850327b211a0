/**
 * Loading the modules an experiment names under `plugins:`. JavaScript modules are loaded with
 * Node's `require`. TypeScript modules (.ts, .cts, .mts) are type-checked first, then compiled
 * by ts-node, which is registered only when the first TypeScript module is met: vaelab's own
 * code is compiled JavaScript and needs no compiler at start-up.
 *
 * The check reads the tsconfig.json nearest to the module (with `experimentalDecorators` and
 * `emitDecoratorMetadata` forced on, as inversify's decorators need them) and reports the errors
 * of the module and of the TypeScript files it imports from its own folder; it costs about one
 * second for a plugin importing vaelab and tfjs-core. `VAELAB_TYPECHECK=0` skips it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as TS from 'typescript';

const TS_EXTENSIONS = new Set(['.ts', '.cts', '.mts']);

/** At most this many compiler errors are listed per module; the rest are counted. */
const MAX_DIAGNOSTICS = 10;

/** A module that cannot be loaded: one line per problem, each naming the file (and line). */
export class ModuleLoadError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ModuleLoadError';
  }
}

/** Whether a resolved module file is TypeScript source (not a declaration file). */
export function isTypeScriptFile(file: string): boolean {
  return TS_EXTENSIONS.has(path.extname(file).toLowerCase()) && !/\.d\.[cm]?ts$/i.test(file);
}

/** A file as messages show it: relative to the working directory when inside it, else absolute. */
export function shownPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/**
 * Resolves a module named in an experiment: a path (relative to `base` when it starts with `.`)
 * or a package name looked up from `base`, then the working directory. A path given without its
 * extension also finds a TypeScript file, as it would under ts-node.
 */
export function resolvePluginModule(spec: string, base: string): string {
  if (spec.startsWith('.') || path.isAbsolute(spec)) {
    const full = path.resolve(base, spec);
    try {
      return require.resolve(full);
    } catch (e) {
      for (const ext of TS_EXTENSIONS) {
        try {
          return require.resolve(full + ext);
        } catch {
          // try the next extension
        }
      }
      throw e;
    }
  }
  return require.resolve(spec, { paths: [base, process.cwd()] });
}

/** Packages vaelab and every plugin must share: one tensor engine, one DI container library. */
export const SHARED_PACKAGES = ['@tensorflow/tfjs-core', 'inversify'] as const;

/**
 * The shared packages a module would load a copy of its own of (resolved from its folder to
 * another file than vaelab's): a second tfjs-core has its own kernels and engine state, a second
 * inversify its own metadata, and either breaks the plugin in ways no message explains later.
 */
export function duplicatePackages(file: string): Array<{ name: string; theirs: string; ours: string }> {
  const out: Array<{ name: string; theirs: string; ours: string }> = [];
  for (const name of SHARED_PACKAGES) {
    let theirs: string;
    try {
      theirs = fs.realpathSync(require.resolve(name, { paths: [path.dirname(file)] }));
    } catch {
      continue; // not resolvable from the module: it does not import it, or its own load will say so
    }
    const ours = fs.realpathSync(require.resolve(name));
    if (theirs !== ours) out.push({ name, theirs, ours });
  }
  return out;
}

/**
 * Loads one plugin module. TypeScript is type-checked (unless VAELAB_TYPECHECK=0) and compiled
 * on the fly. Throws ModuleLoadError naming the file, line and column of what went wrong.
 */
export function loadModule(file: string): unknown {
  const twice = duplicatePackages(file);
  if (twice.length > 0) {
    throw new ModuleLoadError(
      twice.map(
        (d) =>
          `it would load its own copy of ${d.name} (${shownPath(d.theirs)}) besides vaelab's (${shownPath(d.ours)}); list ${d.name} under peerDependencies of the plugin's package.json and remove its own copy`,
      ),
    );
  }
  if (isTypeScriptFile(file)) {
    if (process.env.VAELAB_TYPECHECK !== '0') {
      const problems = typeCheck(file);
      if (problems.length > 0) throw new ModuleLoadError(problems);
    }
    registerTypeScript(file);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file);
  } catch (e) {
    throw new ModuleLoadError(describeLoadFailure(e, file));
  }
}

let typescript: typeof TS | undefined;
function ts(): typeof TS {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (typescript ??= require('typescript') as typeof TS);
}

/** The options vaelab compiles plugins with when no tsconfig.json is found above the module. */
function defaultOptions(): TS.CompilerOptions {
  const t = ts();
  return { target: t.ScriptTarget.ES2022, module: t.ModuleKind.CommonJS, moduleResolution: t.ModuleResolutionKind.Node10, esModuleInterop: true, skipLibCheck: true };
}

/** Decorators as inversify uses them: TypeScript's legacy (experimental) form with metadata. */
const DECORATOR_OPTIONS = { experimentalDecorators: true, emitDecoratorMetadata: true } as const;

interface Project {
  /** The tsconfig.json in effect, or undefined for vaelab's defaults. */
  config: string | undefined;
  options: TS.CompilerOptions;
  problems: string[];
}

/** The tsconfig.json nearest above `file`, parsed, or vaelab's defaults when there is none. */
function projectOf(file: string): Project {
  const t = ts();
  const config = t.findConfigFile(path.dirname(file), t.sys.fileExists);
  if (config === undefined) return { config, options: { ...defaultOptions(), ...DECORATOR_OPTIONS }, problems: [] };
  const problems: string[] = [];
  const host: TS.ParseConfigFileHost = {
    ...t.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => problems.push(formatDiagnostic(d)),
  };
  const parsed = t.getParsedCommandLineOfConfigFile(config, {}, host);
  if (parsed === undefined) return { config, options: {}, problems };
  // "No inputs were found" concerns the project's own `include`, not the module checked here.
  for (const d of parsed.errors) if (d.code !== 18003) problems.push(formatDiagnostic(d));
  return { config, options: { ...parsed.options, ...DECORATOR_OPTIONS }, problems };
}

/** `file:line:col: message (TS1234)`, on one line, without the compiler's closing period. */
function formatDiagnostic(d: TS.Diagnostic): string {
  const t = ts();
  const text = t.flattenDiagnosticMessageText(d.messageText, ' ').replace(/\s+/g, ' ').trim().replace(/\.$/, '');
  if (d.file === undefined || d.start === undefined) return `${text} (TS${d.code})`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${shownPath(d.file.fileName)}:${line + 1}:${character + 1}: ${text} (TS${d.code})`;
}

/**
 * The compiler's errors for a TypeScript module and the TypeScript files it imports from its own
 * folder (declaration files and node_modules are not checked), one line each.
 */
export function typeCheck(file: string): string[] {
  const t = ts();
  const project = projectOf(file);
  if (project.problems.length > 0) return project.problems;
  // Not kept for the next module: a program holds some 60 MB that training needs more.
  const program = t.createProgram({ rootNames: [file], options: { ...project.options, noEmit: true } });
  const dir = path.dirname(path.resolve(file)) + path.sep;
  const own = program
    .getSourceFiles()
    .filter((sf) => !sf.isDeclarationFile && !sf.fileName.includes('/node_modules/') && path.resolve(sf.fileName).startsWith(dir));
  const diagnostics: TS.Diagnostic[] = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const sf of own) diagnostics.push(...program.getSyntacticDiagnostics(sf));
  // Semantic errors after a syntax error are mostly its echoes.
  if (diagnostics.length === 0) for (const sf of own) diagnostics.push(...program.getSemanticDiagnostics(sf));
  const errors = diagnostics.filter((d) => d.category === t.DiagnosticCategory.Error);
  const lines = errors.slice(0, MAX_DIAGNOSTICS).map(formatDiagnostic);
  if (errors.length > MAX_DIAGNOSTICS) lines.push(`${errors.length - MAX_DIAGNOSTICS} more errors (run tsc on ${shownPath(file)} for all of them)`);
  return lines;
}

/**
 * Registers ts-node (transpile only: the check above did the type-checking) unless something
 * already compiles TypeScript in this process (ts-node under mocha, or the source fallback of
 * bin/vaelab.js in a checkout). The first TypeScript module's tsconfig.json is used for all.
 */
function registerTypeScript(file: string): void {
  // eslint-disable-next-line n/no-deprecated-api
  if (require.extensions['.ts'] !== undefined) return;
  const t = ts();
  const project = projectOf(file);
  const moduleKind = project.options.module;
  // A module compiled to ES module syntax cannot be required; the Node16/NodeNext kinds emit
  // CommonJS for a package without "type": "module" and are left alone.
  const keepsModule = moduleKind !== undefined && (moduleKind === t.ModuleKind.CommonJS || (moduleKind >= t.ModuleKind.Node16 && moduleKind <= t.ModuleKind.NodeNext));
  const compilerOptions: Record<string, unknown> = { ...DECORATOR_OPTIONS };
  if (project.config === undefined) {
    // ts-node's own defaults for a file without a tsconfig.json do not fit require(); vaelab's do.
    Object.assign(compilerOptions, { target: 'es2022', module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true });
  } else if (!keepsModule) {
    Object.assign(compilerOptions, { module: 'commonjs', moduleResolution: 'node10' });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tsNode = require('ts-node') as typeof import('ts-node');
  tsNode.register({
    transpileOnly: true,
    project: project.config,
    skipProject: project.config === undefined,
    compilerOptions,
    // .mts files are ES modules to Node; vaelab requires plugins, so they are compiled to CommonJS.
    moduleTypes: { '**/*.mts': 'cjs' },
  });
}

/**
 * What went wrong while a module loaded, one line per problem: where (file:line:col) and the
 * error's first line; for ts-node's compile errors, each compiler diagnostic.
 */
export function describeLoadFailure(e: unknown, file: string): string[] {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.message.startsWith('⨯ Unable to compile TypeScript')) {
    // ts-node's TSError: "⨯ Unable to compile TypeScript:\nfile.ts(3,5): error TS1005: ';' expected.\n..."
    const lines = err.message.split('\n').slice(1).filter((l) => l.trim() !== '');
    return lines.map((l) => {
      const located = /^(.*)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(l);
      if (located) return `${shownPath(path.resolve(located[1]))}:${located[2]}:${located[3]}: ${located[5].replace(/\.$/, '')} (${located[4]})`;
      const bare = /^error (TS\d+): (.*)$/.exec(l);
      return bare ? `${shownPath(file)}: ${bare[2].replace(/\.$/, '')} (${bare[1]})` : `${shownPath(file)}: ${l.trim()}`;
    });
  }
  const first = err.message.split('\n').find((l) => l.trim() !== '') ?? '';
  return [`${whereThrown(err, file)}: ${err.name}: ${first.replace(/\.$/, '')}`];
}

/**
 * Where a loading module threw: for a JavaScript syntax error the location Node puts on the
 * stack's first line; otherwise the first stack frame outside vaelab's core, node_modules and
 * Node itself; else the module file.
 */
function whereThrown(err: Error, file: string): string {
  const stack = err.stack ?? '';
  if (err instanceof SyntaxError) {
    const m = /^(.+):(\d+)\n/.exec(stack);
    if (m && !m[1].startsWith('node:')) return `${shownPath(m[1])}:${m[2]}`;
  }
  const core = path.resolve(__dirname, '..') + path.sep;
  for (const frame of stack.split('\n').slice(1)) {
    // "at fn (/path/file.js:3:7)" or "at /path/file.js:3:7"; node:internal frames do not match.
    const m = /^at (?:.* \()?((?:\/|[A-Za-z]:\\|file:\/\/).*?):(\d+):(\d+)\)?$/.exec(frame.trim());
    if (!m) continue;
    const f = m[1].startsWith('file://') ? new URL(m[1]).pathname : m[1];
    if (f.startsWith(core) || f.includes(`${path.sep}node_modules${path.sep}`)) continue;
    return `${shownPath(f)}:${m[2]}:${m[3]}`;
  }
  return shownPath(file);
}
