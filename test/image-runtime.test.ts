/**
 * Replays the Dockerfile without a Docker engine: the build stage's COPY
 * instructions and `npm run build` in one temporary folder, then the runtime
 * stage's COPY instructions and a production-only `npm ci` in another, and
 * starts the image's ENTRYPOINT there. A package that the exporter imports
 * at run time but lists under devDependencies is missing from that folder,
 * so the start fails.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import bcrypt from 'bcryptjs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Stage {
  name: string | null;
  instructions: Instruction[];
}

function readStages(): Stage[] {
  const dockerfile = DockerfileParser.parse(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [, as, name = null] = instruction.getArguments().map((argument) => argument.getValue());
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : null, instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === keyword);
}

function argumentsOf(instruction: Instruction): string[] {
  return instruction.getArguments().map((argument) => argument.getValue());
}

function execFormOf(instruction: Instruction): string[] {
  return JSON.parse((instruction.getArgumentsContent() ?? '').replace(/^CMD\s+/, '')) as string[];
}

function workdirOf(stage: Stage): string {
  return argumentsOf(all(stage, 'WORKDIR').at(-1) as Instruction)[0] ?? '/';
}

function fromStageOf(instruction: Instruction): string | undefined {
  return (instruction as Instruction & { getFromFlag(): { getValue(): string | null } | null }).getFromFlag()?.getValue() ?? undefined;
}

/** Maps a path inside the image, relative to WORKDIR or absolute under it, to the local folder that stands for WORKDIR. */
function localPath(imagePath: string, workdir: string, folder: string): string {
  const absolute = path.posix.resolve(workdir, imagePath);
  const relative = path.posix.relative(workdir, absolute);
  if (relative.startsWith('..')) throw new Error(`${imagePath} lies outside WORKDIR ${workdir}; the replay cannot place it`);
  return path.join(folder, relative);
}

/**
 * Replays the COPY instructions of a stage into `folder`. Sources come from
 * the repository, or from the folder of the named stage for `--from`.
 */
async function replayCopies(stage: Stage, folder: string, stageFolders: ReadonlyMap<string, { folder: string; workdir: string }>): Promise<void> {
  const workdir = workdirOf(stage);
  for (const instruction of all(stage, 'COPY')) {
    const values = argumentsOf(instruction);
    const sources = values.slice(0, -1);
    const destination = values.at(-1) ?? '.';
    const intoFolder = sources.length > 1 || destination.endsWith('/');
    const from = fromStageOf(instruction);

    for (const source of sources) {
      const origin = stageFolders.get(from ?? '');
      const localSource = origin === undefined ? path.join(root, source) : localPath(source, origin.workdir, origin.folder);
      const target = localPath(intoFolder ? path.posix.join(destination, path.posix.basename(source)) : destination, workdir, folder);
      await mkdir(path.dirname(target), { recursive: true });
      await cp(localSource, target, { recursive: true });
    }
  }
}

/** Environment of the runtime stage: only its ENV instructions, with ARG defaults expanded, plus PATH. */
function runtimeEnvironment(stage: Stage): Record<string, string> {
  const args = new Map<string, string>();
  const environment: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  for (const instruction of stage.instructions) {
    const keyword = instruction.getKeyword();
    if (keyword !== 'ARG' && keyword !== 'ENV') continue;

    const properties = (instruction as Instruction & { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties();
    for (const property of properties) {
      const value = (property.getValue() ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced: string | undefined, bare: string | undefined) => args.get(braced ?? bare ?? '') ?? '');
      if (keyword === 'ARG') args.set(property.getName(), value);
      else environment[property.getName()] = value;
    }
  }
  return environment;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Package names that compiled JavaScript imports, without Node.js built-ins and relative paths. */
function importedPackages(source: string): string[] {
  const specifiers = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)].map((match) => match[1] ?? '');
  return specifiers
    .filter((specifier) => !specifier.startsWith('.') && !specifier.startsWith('node:'))
    .map((specifier) => (specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? '')));
}

const stages = readStages();
const buildStage = stages.find((stage) => stage.name === 'build') as Stage;
const runtimeStage = stages.at(-1) as Stage;

let workspace: string;
let buildFolder: string;
let runtimeFolder: string;
let copiedEntries: string[];
let exporter: ChildProcess | undefined;

describe('image runtime stage', () => {
  beforeAll(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), 'image-runtime-'));
    buildFolder = path.join(workspace, 'build');
    runtimeFolder = path.join(workspace, 'runtime');
    await mkdir(buildFolder);
    await mkdir(runtimeFolder);

    await replayCopies(buildStage, buildFolder, new Map());
    // Stands in for the build stage's `npm ci`, which installs the same lock file.
    await symlink(path.join(root, 'node_modules'), path.join(buildFolder, 'node_modules'), 'dir');
    await run('npm', ['run', 'build', '--silent'], { cwd: buildFolder });

    await replayCopies(runtimeStage, runtimeFolder, new Map([['build', { folder: buildFolder, workdir: workdirOf(buildStage) }]]));
    copiedEntries = (await readdir(runtimeFolder)).sort();
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: runtimeFolder });
  }, 300_000);

  afterAll(async () => {
    if (exporter !== undefined && exporter.exitCode === null) exporter.kill('SIGKILL');
    if (workspace !== undefined) await rm(workspace, { recursive: true, force: true });
  });

  it('copies only the manifests and dist', () => {
    expect(copiedEntries).toEqual(['dist', 'package-lock.json', 'package.json']);
    expect(existsSync(path.join(runtimeFolder, 'dist', 'main.js'))).toBe(true);
  });

  it('has no node_modules above the folder', () => {
    // Node.js also resolves packages from node_modules in parent folders, which would hide a missing one.
    let folder = path.dirname(runtimeFolder);
    for (;;) {
      expect(existsSync(path.join(folder, 'node_modules')), folder).toBe(false);
      const parent = path.dirname(folder);
      if (parent === folder) break;
      folder = parent;
    }
  });

  it('installs no dev dependency', () => {
    for (const name of Object.keys(manifest.devDependencies)) {
      expect(existsSync(path.join(runtimeFolder, 'node_modules', name)), name).toBe(false);
    }
    for (const name of Object.keys(manifest.dependencies)) {
      expect(existsSync(path.join(runtimeFolder, 'node_modules', name, 'package.json')), name).toBe(true);
    }
  });

  it('imports only runtime dependencies', async () => {
    const files = (await listFiles(path.join(runtimeFolder, 'dist'))).filter((file) => file.endsWith('.js'));
    expect(files.length).toBeGreaterThan(0);

    for (const file of files) {
      for (const name of importedPackages(await readFile(file, 'utf8'))) {
        expect(Object.keys(manifest.dependencies), `${path.relative(runtimeFolder, file)} imports ${name}`).toContain(name);
      }
    }
  });

  /** Returns the ENTRYPOINT and CMD of the image, with tini left out and `node` replaced by this Node.js binary. */
  function imageCommand(): string[] {
    const entrypoint = execFormOf(all(runtimeStage, 'ENTRYPOINT').at(-1) as Instruction);
    const command = all(runtimeStage, 'CMD').at(-1);
    const argv = [...entrypoint, ...(command === undefined ? [] : execFormOf(command))];

    expect(argv.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(argv[2]).toBe('node');
    return [process.execPath, ...argv.slice(3)];
  }

  it('prints the package version', async () => {
    const [node, ...args] = imageCommand();

    const { stdout } = await run(node as string, [...args, '--version'], { cwd: runtimeFolder, env: runtimeEnvironment(runtimeStage) });
    expect(stdout).toContain(manifest.version);
  });

  interface StartedExporter {
    port: number;
    exited: Promise<number | null>;
    output: () => string;
  }

  /** Starts the image command in demo mode on a free port of 127.0.0.1. */
  async function startDemo(extraArgs: string[] = []): Promise<StartedExporter> {
    const [node, ...args] = imageCommand();
    const port = await freePort();
    let output = '';
    exporter = spawn(node as string, [...args, '--demo', `--web.listen-address=127.0.0.1:${port}`, ...extraArgs], {
      cwd: runtimeFolder,
      env: runtimeEnvironment(runtimeStage),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exporter.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    exporter.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => exporter?.on('exit', (code) => resolve(code)));
    return { port, exited, output: () => output };
  }

  /** Polls up to 60 times, half a second apart, until the session gauges appear, because the first demo refresh takes a moment. */
  async function scrapeUntilSessions(scrape: () => Promise<string>): Promise<string> {
    let metrics = '';
    for (let attempt = 0; attempt < 60 && !metrics.includes('ngrok_app_sessions_active{') && exporter?.exitCode === null; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      metrics = await scrape().catch(() => '');
    }
    return metrics;
  }

  it('runs the demo entry point', async () => {
    const started = await startDemo();

    const metrics = await scrapeUntilSessions(() => fetch(`http://127.0.0.1:${started.port}/metrics`).then((response) => response.text()));
    expect(metrics, started.output()).toContain('ngrok_app_sessions_active{');
    expect(metrics).toMatch(/^ngrok_up 1$/m);

    const healthcheck = all(runtimeStage, 'HEALTHCHECK').at(-1) as Instruction;
    const [checkBinary, ...checkArgs] = execFormOf(healthcheck).map((part) => part.replace(':10119/', `:${started.port}/`));
    expect(checkBinary).toBe('node');
    await expect(run(process.execPath, checkArgs, { cwd: runtimeFolder, env: runtimeEnvironment(runtimeStage) })).resolves.toBeDefined();

    exporter?.kill('SIGTERM');
    expect(await started.exited, started.output()).toBe(0);
  }, 60_000);

  it('serves TLS with basic auth', async () => {
    // A separate folder, as a mounted ConfigMap or Secret would be.
    const configFolder = path.join(workspace, 'web-config');
    await mkdir(configFolder);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', 'tls.key', '-out', 'tls.crt'], { cwd: configFolder });
    await writeFile(path.join(configFolder, 'web.yml'), [
      'tls_server_config:',
      '  cert_file: tls.crt',
      '  key_file: tls.key',
      'basic_auth_users:',
      `  prometheus: ${bcrypt.hashSync('scrape-password', 4)}`,
    ].join('\n'));
    const ca = await readFile(path.join(configFolder, 'tls.crt'));
    const started = await startDemo([`--web.config.file=${path.join(configFolder, 'web.yml')}`]);

    const get = (auth?: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: started.port, path: '/metrics', ca, agent: false, ...(auth === undefined ? {} : { auth }) }, (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });

    const metrics = await scrapeUntilSessions(async () => (await get('prometheus:scrape-password')).body);
    expect(metrics, started.output()).toContain('ngrok_app_sessions_active{');
    expect((await get()).status).toBe(401);
    expect((await get('prometheus:wrong')).status).toBe(401);
    expect(started.output()).not.toContain('scrape-password');

    exporter?.kill('SIGTERM');
    expect(await started.exited, started.output()).toBe(0);
  }, 60_000);
});
