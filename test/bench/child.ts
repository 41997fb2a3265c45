/**
 * Child processes of the benchmark: each runs one TypeScript script under
 * tsx and talks to the parent over the IPC channel, so the simulator, the
 * exporter and the load generator never share a process or its memory.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Reply that a child sends for each command: `{ id, result }` or `{ id, error }`. */
interface ChildReply {
  id: number;
  result?: unknown;
  error?: string;
}

/** Maximum wait for a child to start or to reply to one command. */
const DEFAULT_COMMAND_TIMEOUT_MS = 180_000;

/** Maximum wait for a child to exit after `close` before it is killed. */
const EXIT_TIMEOUT_MS = 10_000;

export interface ChildOptions {
  /** Extra Node options such as `--expose-gc`. */
  nodeOptions?: string[];
  commandTimeoutMs?: number;
}

/** A forked benchmark script that replies to commands. */
export class BenchChild {
  readonly #process: ChildProcess;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess, timeoutMs: number) {
    this.#process = child;
    this.#timeoutMs = timeoutMs;
    child.on('message', (message: ChildReply) => this.#settle(message));
    child.on('exit', (code, signal) => {
      this.#exited = true;
      for (const [id, pending] of this.#pending) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`benchmark child exited (code ${code}, signal ${signal}) before replying to command ${id}`));
      }
      this.#pending.clear();
    });
  }

  /**
   * Forks `script` (a path relative to this directory) with `spec` as its only
   * argument, and resolves with the child and the result of its start-up once
   * it sends its ready message (id 0).
   */
  static async start<T>(script: string, spec: unknown, options: ChildOptions = {}): Promise<{ child: BenchChild; ready: T }> {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const forked = fork(path, [JSON.stringify(spec)], {
      execArgv: ['--import', 'tsx', ...(options.nodeOptions ?? [])],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const child = new BenchChild(forked, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    const ready = (await child.#await(0, `start of ${script}`)) as T;
    return { child, ready };
  }

  /** Process id, for the record. */
  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** Sends a command and resolves with the child's result. */
  async request<T>(command: string, payload: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    const reply = this.#await(id, command);
    this.#process.send({ id, command, ...payload });
    return (await reply) as T;
  }

  /** Asks the child to exit, and kills it when it has not exited after EXIT_TIMEOUT_MS. */
  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#process.once('exit', () => resolve()));
    this.#process.send({ id: this.#nextId++, command: 'close' });
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  #await(id: number, what: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`benchmark child did not reply to ${what} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  #settle(message: ChildReply): void {
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.error !== undefined) pending.reject(new Error(message.error));
    else pending.resolve(message.result);
  }
}

/** Handler of one command inside a child; its return value is sent back as the result. */
export type CommandHandler = (message: Record<string, unknown>) => unknown;

/**
 * Runs inside a child: sends `ready` as the reply to id 0, then replies to
 * each command with its handler's result until `close`, after which
 * `onClose` runs and the process exits.
 */
export function serveCommands(ready: unknown, handlers: Record<string, CommandHandler>, onClose: () => Promise<void>): void {
  const send = (reply: ChildReply): void => {
    process.send?.(reply);
  };
  process.on('message', (message: Record<string, unknown> & { id: number; command: string }) => {
    if (message.command === 'close') {
      void onClose().finally(() => process.exit(0));
      return;
    }
    const handler = handlers[message.command];
    if (handler === undefined) {
      send({ id: message.id, error: `unknown benchmark command ${JSON.stringify(message.command)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message))
      .then(
        (result) => send({ id: message.id, result }),
        (error: unknown) => send({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  send({ id: 0, result: ready });
}

/** Reads the JSON spec that {@link BenchChild.start} passes as the only argument. */
export function readSpec<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('benchmark child started without its JSON spec argument');
  return JSON.parse(raw) as T;
}

/** Runs a child's start-up and reports a failure to the parent before exiting. */
export function runChild(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.send?.({ id: 0, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  });
}
