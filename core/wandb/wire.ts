/**
 * The W&B wire protocol as @wandb/sdk 0.5.1 speaks it, spoken here with bounded requests.
 *
 * What the SDK sends (node_modules/@wandb/sdk/dist/internal/api.js, filestream.js, and
 * graphql-request 5, which builds its GraphQL bodies):
 *   POST <base>/graphql            {"query": <document>, "variables": {...}, "operationName": "Viewer" | "UpsertBucket"}
 *   POST <base>/files/<entity>/<project>/<run id>/file_stream
 *                                  {"files": {"wandb-history.jsonl": {"offset": n, "content": [<row JSON>, ...]},
 *                                             "wandb-summary.json": {"offset": 0, "content": [<summary JSON>]}}}
 *                                  and last {"complete": true, "exitcode": n}
 * each with `User-Agent: W&B Internal JS Client <version>` and `Authorization: Basic base64("api:" + key)`.
 * A history line's offset is its row number in the run, so a row sent twice lands on the same line.
 *
 * Why not the SDK's own client (measured against a local server, see test/wandb.test.ts): its
 * requests have no timeout (a server that never answers holds the run's end forever), its retry
 * re-awaits the same rejected promise instead of sending again, a file_stream answer of HTTP 500
 * is taken as success (the rows are dropped), it never says which rows the server took (so what
 * was not sent cannot be kept), and `init` installs SIGINT/SIGTERM/beforeExit handlers. It also
 * has no way to send a summary, tags or notes, which the same UpsertBucket mutation carries.
 * So vaelab keeps the SDK's documents and bodies and sends them itself: one deadline per request,
 * sockets and timers that never keep the process alive, and an answer for every request.
 */
import * as http from 'node:http';
import * as https from 'node:https';

/**
 * The SDK's User-Agent. Its version string comes from dist/sdk/lib/version.js, which the
 * package left at 0.3.0 in its 0.5.1 release; sent as the SDK sends it.
 */
export const USER_AGENT = 'W&B Internal JS Client 0.3.0';

/** UpsertBucket as the SDK's generated client has it (dist/gql/graphql.js, UpsertBucketDocument). */
export const UPSERT_BUCKET = `
    mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, $commit: String, $config: JSONString, $host: String, $debug: Boolean, $program: String, $repo: String, $jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
  upsertBucket(
    input: {id: $id, name: $name, groupName: $groupName, modelName: $project, entityName: $entity, description: $description, displayName: $displayName, notes: $notes, config: $config, commit: $commit, host: $host, debug: $debug, jobProgram: $program, jobRepo: $repo, jobType: $jobType, state: $state, sweep: $sweep, tags: $tags, summaryMetrics: $summaryMetrics}
  ) {
    bucket {
      id
      name
      displayName
      description
      config
      sweepName
      project {
        id
        name
        entity {
          id
          name
        }
      }
    }
    inserted
  }
}
    `;

/** Viewer as the SDK's generated client has it (dist/gql/graphql.js, ViewerDocument). */
export const VIEWER = `
    query Viewer {
  viewer {
    id
    entity
    flags
    teams {
      edges {
        node {
          name
        }
      }
    }
  }
}
    `;

/** Variables of UpsertBucket that vaelab sends (the SDK's names). */
export interface UpsertVars {
  name: string;
  project: string;
  entity: string;
  groupName?: string;
  displayName?: string;
  notes?: string;
  tags?: string[];
  /** JSON text, W&B's config form: {"key": {"value": ..., "desc": null}}. */
  config?: string;
  /** JSON text of the run's summary. */
  summaryMetrics?: string;
  state?: string;
  host?: string;
  jobType?: string;
}

/** A request that did not get a usable answer. `retryable`: the same request may succeed later. */
export class WireError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

/** Where and as whom to send. */
export interface WireSettings {
  /** e.g. https://api.wandb.ai (WANDB_BASE_URL) */
  baseUrl: string;
  apiKey: string;
  /** Deadline of each request, answer included. */
  timeoutMs: number;
}

/** One HTTP answer. */
interface Answer {
  status: number;
  text: string;
}

/** Sends the SDK's requests, each with a deadline; never keeps the process alive. */
export class WireClient {
  private readonly inflight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(readonly settings: WireSettings) {}

  /** What messages call the server. */
  get where(): string {
    return this.settings.baseUrl;
  }

  private post(pathname: string, body: unknown): Promise<Answer> {
    if (this.closed) return Promise.reject(new WireError('abandoned', false));
    const url = new URL(this.settings.baseUrl.replace(/\/+$/, '') + pathname);
    const lib = url.protocol === 'https:' ? https : http;
    const data = Buffer.from(JSON.stringify(body), 'utf8');
    const seconds = this.settings.timeoutMs / 1000;
    return new Promise<Answer>((resolve, reject) => {
      let done = false;
      const settle = (err: WireError | null, answer?: Answer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inflight.delete(req);
        if (err) reject(err);
        else resolve(answer!);
      };
      // agent: false — a fresh connection per request, so no pooled socket outlives it.
      const req = lib.request(url, {
        method: 'POST',
        agent: false,
        headers: {
          'User-Agent': USER_AGENT,
          'Content-Type': 'application/json',
          'Content-Length': data.length,
          Authorization: `Basic ${Buffer.from(`api:${this.settings.apiKey}`).toString('base64')}`,
        },
      });
      this.inflight.add(req);
      // The deadline covers connecting, sending and the whole answer; unref: it never holds the process.
      const timer = setTimeout(() => {
        settle(new WireError(`no answer within ${seconds} s`, true));
        req.destroy();
      }, this.settings.timeoutMs);
      timer.unref();
      req.on('socket', (socket) => socket.unref());
      req.on('error', (e: NodeJS.ErrnoException) => settle(new WireError(e.code ? `${e.code} (${e.message})` : e.message, true)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => settle(new WireError(e.message, true)));
        res.on('aborted', () => settle(new WireError('answer cut off', true)));
        res.on('end', () => settle(null, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.end(data);
    });
  }

  /** Throws a WireError for an answer that is not HTTP 200; 401/403 and other 4xx are not retried, 429 and 5xx are. */
  private static check(what: string, a: Answer): void {
    if (a.status === 200) return;
    const retryable = a.status === 429 || a.status >= 500;
    const auth = a.status === 401 || a.status === 403 ? ' (the API key was refused)' : '';
    throw new WireError(`${what}: HTTP ${a.status}${auth}`, retryable, a.status);
  }

  private async graphql(operationName: string, query: string, variables: Record<string, unknown>): Promise<Record<string, unknown>> {
    const a = await this.post('/graphql', { query, variables, operationName });
    WireClient.check(operationName, a);
    let body: { data?: Record<string, unknown> | null; errors?: Array<{ message?: string }> };
    try {
      body = JSON.parse(a.text) as typeof body;
    } catch {
      throw new WireError(`${operationName}: the answer is not JSON`, true);
    }
    if (body.errors && body.errors.length > 0) {
      throw new WireError(`${operationName}: ${body.errors[0].message ?? 'GraphQL error'}`, false);
    }
    return body.data ?? {};
  }

  /** The default entity of the API key (the SDK's ensureDefaultEntity). */
  async viewerEntity(): Promise<string> {
    const data = await this.graphql('Viewer', VIEWER, {});
    const entity = (data.viewer as { entity?: string } | null | undefined)?.entity;
    if (!entity) throw new WireError('Viewer: no user for this API key (the key was refused)', false);
    return entity;
  }

  /** Creates or updates the run (config, group, tags, notes, summary). */
  async upsertBucket(vars: UpsertVars): Promise<void> {
    await this.graphql('UpsertBucket', UPSERT_BUCKET, { ...vars });
  }

  /** One file_stream post. */
  async fileStream(entity: string, project: string, runId: string, body: unknown): Promise<void> {
    const p = `/files/${encodeURIComponent(entity)}/${encodeURIComponent(project)}/${encodeURIComponent(runId)}/file_stream`;
    WireClient.check('file_stream', await this.post(p, body));
  }

  /** Abandons every request in flight (they fail with "abandoned") and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const req of this.inflight) req.destroy(new Error('abandoned'));
    this.inflight.clear();
  }
}
