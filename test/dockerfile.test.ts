import { readFileSync } from 'node:fs';
import path from 'node:path';

import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const dockerfile = DockerfileParser.parse(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  description: string;
  license: string;
};

interface Stage {
  name: string | null;
  image: string;
  instructions: Instruction[];
}

/** Splits the Dockerfile into stages at each FROM. */
function readStages(): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [image = '', as, name = null] = instruction.getArguments().map((argument) => argument.getValue());
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : null, image, instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const stages = readStages();
const build = stages[0] as Stage;
const runtime = stages.at(-1) as Stage;

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === keyword);
}

function argumentsOf(instruction: Instruction): string[] {
  return instruction.getArguments().map((argument) => argument.getValue());
}

/** Returns the command of a RUN instruction as one line. */
function commandOf(instruction: Instruction): string {
  return argumentsOf(instruction).join(' ');
}

/** Returns the JSON array of an exec-form instruction such as ENTRYPOINT or `HEALTHCHECK CMD`. */
function execFormOf(instruction: Instruction): string[] {
  const content = (instruction.getArgumentsContent() ?? '').replace(/^CMD\s+/, '');
  return JSON.parse(content) as string[];
}

function propertiesOf(stage: Stage, keyword: 'ARG' | 'ENV' | 'LABEL'): Map<string, string> {
  const properties = new Map<string, string>();
  for (const instruction of all(stage, keyword)) {
    const withProperties = instruction as Instruction & { getProperties(): { getName(): string; getValue(): string | null }[] };
    for (const property of withProperties.getProperties()) properties.set(property.getName(), property.getValue() ?? '');
  }
  return properties;
}

/** Replaces `${NAME}` and `$NAME` with the defaults of the stage's ARG instructions. */
function expandArgs(stage: Stage, text: string): string {
  const args = propertiesOf(stage, 'ARG');
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced: string | undefined, bare: string | undefined) => args.get(braced ?? bare ?? '') ?? '');
}

describe('Dockerfile stages', () => {
  it('has a build and a runtime stage', () => {
    expect(stages).toHaveLength(2);
    expect(build.name).toBe('build');
    expect(runtime.name).toBe('runtime');
  });

  it.each([
    ['build', 0],
    ['runtime', 1],
  ])('pins the %s image to an exact Node.js LTS slim tag', (_name, index) => {
    const image = (stages[index] as Stage).image;
    const match = /^node:(\d+)\.(\d+)\.(\d+)-(bookworm|trixie)-slim$/.exec(image);

    expect(match, image).not.toBeNull();
    // Even Node.js majors become LTS releases, and odd ones never do.
    expect(Number(match?.[1]) % 2).toBe(0);
    expect(Number(match?.[1])).toBeGreaterThanOrEqual(20);
  });

  it('builds both stages on one Node.js version', () => {
    expect(runtime.image).toBe(build.image);
  });

  it('compiles with npm ci and npm run build', () => {
    const commands = all(build, 'RUN').map(commandOf);

    expect(commands.some((command) => /\bnpm ci\b/.test(command))).toBe(true);
    expect(commands.some((command) => /\bnpm run build\b/.test(command))).toBe(true);
    expect(commands.findIndex((command) => /\bnpm ci\b/.test(command))).toBeLessThan(commands.findIndex((command) => /\bnpm run build\b/.test(command)));
  });

  it('copies the build inputs into the build stage', () => {
    const sources = all(build, 'COPY').flatMap((instruction) => argumentsOf(instruction).slice(0, -1));

    expect(sources.sort()).toEqual(['package-lock.json', 'package.json', 'src', 'tsconfig.json']);
  });
});

describe('Dockerfile runtime stage', () => {
  it('limits the V8 young generation', () => {
    expect(propertiesOf(runtime, 'ENV').get('NODE_OPTIONS')).toBe('--max-semi-space-size=4');
  });

  it('sets NODE_ENV to production', () => {
    expect(propertiesOf(runtime, 'ENV').get('NODE_ENV')).toBe('production');
  });

  it('installs production dependencies only', () => {
    const commands = all(runtime, 'RUN').map(commandOf);
    const install = commands.find((command) => /\bnpm ci\b/.test(command));

    expect(install).toBeDefined();
    expect(install).toContain('--omit=dev');
    expect(commands.some((command) => /\bnpm run build\b/.test(command))).toBe(false);
  });

  it('copies only the manifests and dist', () => {
    const copies = all(runtime, 'COPY').map((instruction) => {
      const from = (instruction as Instruction & { getFromFlag(): { getValue(): string | null } | null }).getFromFlag()?.getValue() ?? null;
      return { from, sources: argumentsOf(instruction).slice(0, -1) };
    });

    expect(copies).toEqual([
      { from: null, sources: ['package.json', 'package-lock.json'] },
      { from: 'build', sources: ['/app/dist'] },
    ]);
    expect(all(runtime, 'ADD')).toHaveLength(0);
  });

  it('copies dist from the build output folder', () => {
    const workdir = argumentsOf(all(build, 'WORKDIR').at(-1) as Instruction)[0];
    const tsconfig = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };

    expect(path.posix.join(workdir ?? '', tsconfig.compilerOptions.outDir)).toBe('/app/dist');
  });

  it('runs as a numeric non-root user', () => {
    const users = all(runtime, 'USER');
    const user = argumentsOf(users.at(-1) as Instruction)[0] ?? '';
    const [uid, gid] = user.split(':');

    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);
  });

  it('switches user after the last RUN', () => {
    const keywords = runtime.instructions.map((instruction) => instruction.getKeyword());

    expect(keywords.lastIndexOf('USER')).toBeGreaterThan(keywords.lastIndexOf('RUN'));
  });

  it('installs tini from Debian', () => {
    const install = all(runtime, 'RUN').map(commandOf).find((command) => command.includes('apt-get install'));

    expect(install).toMatch(/apt-get install -y --no-install-recommends tini\b/);
    expect(install).toContain('rm -rf /var/lib/apt/lists/*');
  });

  it('starts node dist/main.js under tini', () => {
    const entrypoints = all(runtime, 'ENTRYPOINT');

    expect(entrypoints).toHaveLength(1);
    expect(execFormOf(entrypoints[0] as Instruction)).toEqual(['/usr/bin/tini', '--', 'node', 'dist/main.js']);
    expect(argumentsOf(all(runtime, 'WORKDIR').at(-1) as Instruction)).toEqual(['/app']);
  });

  it('passes the run arguments through', () => {
    const commands = all(runtime, 'CMD');

    expect(commands.length).toBeLessThanOrEqual(1);
    if (commands.length === 1) expect(execFormOf(commands[0] as Instruction)).toEqual([]);
  });

  it('exposes port 10119', () => {
    const ports = all(runtime, 'EXPOSE').flatMap(argumentsOf);

    expect(ports).toEqual(['10119']);
  });

  it('checks health at /-/healthy with node', () => {
    const checks = all(runtime, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const check = checks[0] as Instruction & { getFlags(): { getName(): string; getValue(): string | null }[] };

    const command = execFormOf(check);
    expect(command[0]).toBe('node');
    expect(command[1]).toBe('-e');
    expect(command[2]).toContain('http://127.0.0.1:10119/-/healthy');
    const flags = Object.fromEntries(check.getFlags().map((flag) => [flag.getName(), flag.getValue()]));
    expect(Object.keys(flags).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
  });

  it('sets the OCI labels from package.json', () => {
    const labels = propertiesOf(runtime, 'LABEL');
    const label = (name: string): string => expandArgs(runtime, labels.get(`org.opencontainers.image.${name}`) ?? '');

    expect(label('title')).toBe(manifest.name);
    expect(label('description')).toBe(manifest.description);
    expect(label('licenses')).toBe(manifest.license);
    expect(label('version')).toBe(manifest.version);
    expect(labels.has('org.opencontainers.image.source')).toBe(true);
    expect(labels.has('org.opencontainers.image.revision')).toBe(true);
  });

  it('passes the revision to the exporter', () => {
    expect(propertiesOf(runtime, 'ENV').get('NGROK_SESSIONS_EXPORTER_REVISION')).toBe('${REVISION}');
    expect(propertiesOf(runtime, 'ARG').has('REVISION')).toBe(true);
  });
});

/** Docker's .dockerignore rules: the last matching pattern wins, and a match on a folder covers its contents. */
function isIgnored(relativePath: string, rules: readonly string[]): boolean {
  const parts = relativePath.split('/');
  const candidates = parts.map((_part, index) => parts.slice(0, index + 1).join('/'));

  let ignored = false;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/+$/, '');
    if (candidates.some((candidate) => globToRegExp(pattern).test(candidate))) ignored = !negated;
  }
  return ignored;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index] as string;
    if (pattern.startsWith('**/', index)) {
      source += '(?:.*/)?';
      index += 2;
    } else if (pattern.startsWith('**', index)) {
      source += '.*';
      index += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

describe('.dockerignore', () => {
  const rules = readFileSync(path.join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  it.each([
    'test/web-config.test.ts',
    '.git/HEAD',
    'node_modules/express/package.json',
    'dist/main.js',
    'coverage/index.html',
    'deploy/kubernetes/deployment.yaml',
    'dashboards/overview.json',
    '.bench-tmp/run.json',
    '.env',
    'Dockerfile',
    'README.md',
    'src/.DS_Store',
  ])('leaves out %s', (file) => {
    expect(isIgnored(file, rules)).toBe(true);
  });

  it('keeps every file that the Dockerfile copies', () => {
    const sources = stages
      .flatMap((stage) => all(stage, 'COPY'))
      .filter((instruction) => (instruction as Instruction & { getFromFlag(): unknown }).getFromFlag() === null)
      .flatMap((instruction) => argumentsOf(instruction).slice(0, -1));

    expect(sources.length).toBeGreaterThan(0);
    for (const source of [...sources, 'src/main.ts', 'src/web/web-config.ts']) {
      expect(isIgnored(source, rules), source).toBe(false);
    }
  });
});
