// Checks of the deployment files (issue "Deployment"): the systemd unit, the Kubernetes manifests, the
// Chrome seccomp profile, the Dockerfile with its entrypoint, and the package list they share with
// tests/rig/setup.sh. Each check is also run on a broken variant, in memory, to show it can fail.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../supervisor/src/config/load.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'deploy-test-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, input: opts.input, timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// --- deploy/packages.txt ---------------------------------------------------------------------------------

interface Pkg { name: string; testOnly: boolean }

/** The list's own rules: one package a line, `#` starts a comment, a `# test-only` comment marks a line. */
function parsePackages(text: string): Pkg[] {
  return text.split('\n').flatMap((line) => {
    const hash = line.indexOf('#');
    const name = (hash < 0 ? line : line.slice(0, hash)).trim();
    if (!name) return [];
    if (/\s/.test(name)) throw new Error(`packages.txt: more than one word on a line: ${line}`);
    return [{ name, testOnly: hash >= 0 && /^#\s*test-only\b/.test(line.slice(hash)) }];
  });
}

const packages = parsePackages(read('deploy/packages.txt'));
const allNames = packages.map((p) => p.name);
const runtimeNames = packages.filter((p) => !p.testOnly).map((p) => p.name);

t.test('deploy/packages.txt', async (t) => {
  t.equal(new Set(allNames).size, allNames.length, 'no package twice');
  for (const name of ['tini', 'chromium', 'pulseaudio', 'xvfb', 'ffmpeg', 'gstreamer1.0-plugins-base']) {
    t.ok(runtimeNames.includes(name), `${name} is installed in the image`);
  }
  for (const name of ['systemd', 'redis-server', 'nginx']) {
    t.ok(allNames.includes(name) && !runtimeNames.includes(name), `${name} is test-only`);
  }
});

t.test('tests/rig/setup.sh still installs every package of the list, test-only ones included', async (t) => {
  // Run the very command setup.sh reads the list with.
  const m = /mapfile -t packages < <\((sed .*deploy\/packages\.txt)\)/.exec(read('tests/rig/setup.sh'));
  if (!m?.[1]) return t.fail('setup.sh no longer reads deploy/packages.txt with `mapfile … < <(sed …)`');
  const r = run('bash', ['-c', m[1]]);
  t.equal(r.code, 0, r.err);
  t.same(r.out.split('\n').filter(Boolean), allNames);
});

t.test('deploy/docker/runtime-packages.sh prints the list less the test-only lines', async (t) => {
  const r = run('sh', ['deploy/docker/runtime-packages.sh', 'deploy/packages.txt']);
  t.equal(r.code, 0, r.err);
  t.same(r.out.split('\n').filter(Boolean), runtimeNames);
  // It can fail: a missing list is an error, not an empty install.
  t.not(run('sh', ['deploy/docker/runtime-packages.sh', join(tmp, 'missing.txt')]).code, 0, 'missing list fails');
});

// --- Dockerfile ---------------------------------------------------------------------------------------------

interface Instruction { cmd: string; args: string; line: number }
interface Stage { image: string; name?: string; body: Instruction[] }

/** Instructions with continuation lines joined; comment lines (parser directives too) dropped. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) || (!buf && !raw.trim())) return;
    if (!buf) start = i + 1;
    const cont = /\\\s*$/.test(raw);
    buf += cont ? `${raw.replace(/\\\s*$/, '')} ` : raw;
    if (cont) return;
    const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(buf);
    if (m?.[1]) instructions.push({ cmd: m[1].toUpperCase(), args: (m[2] ?? '').trim(), line: start });
    buf = '';
  });
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.cmd === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ image: m?.[1] ?? '', name: m?.[2], body: [] });
    } else {
      stages.at(-1)?.body.push(ins);
    }
  }
  return stages;
}

/** COPY/ADD sources and destination, flags dropped; exec (JSON) form too. */
function copyParts(ins: Instruction): { from?: string; sources: string[]; dest: string } {
  const flags = [...ins.args.matchAll(/--(\w+)=(\S+)/g)];
  const rest = ins.args.replace(/--\w+=\S+\s*/g, '').trim();
  const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  return { from: flags.find((f) => f[1] === 'from')?.[2], sources: words.slice(0, -1), dest: words.at(-1) ?? '' };
}

/** The simple .dockerignore patterns used here: names, `dir`, `**\/name` and `*.ext`. */
function dockerIgnored(rel: string, patterns: string[]): boolean {
  const parts = rel.split('/');
  return patterns.some((p) => {
    if (p.startsWith('**/')) return parts.includes(p.slice(3));
    if (p.startsWith('*.')) return parts.some((s) => s.endsWith(p.slice(1)));
    return rel === p || rel.startsWith(`${p}/`);
  });
}

/** Everything wrong with a Dockerfile against the brief; empty when it is right. */
function dockerfileProblems(text: string, dockerignore: string): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(text);
  const final = stages.at(-1);
  if (!final) return ['no FROM'];
  if (final.image !== 'debian:bookworm-slim') problems.push(`final stage is ${final.image}, not debian:bookworm-slim`);

  const nodeStage = stages.find((s) => /^node:24(\.\d+)*-bookworm-slim$/.test(s.image) && s.name);
  if (!nodeStage) problems.push('no `FROM node:24-bookworm-slim AS …` stage');
  const copies = final.body.filter((i) => i.cmd === 'COPY' || i.cmd === 'ADD').map((i) => ({ ins: i, ...copyParts(i) }));
  if (!copies.some((c) => c.from === nodeStage?.name && c.sources.includes('/usr/local/bin/node'))) {
    problems.push('node is not copied from the node:24 stage');
  }
  if (!stages.some((s) => s.body.some((i) => i.cmd === 'RUN' && /\bnpm ci\b/.test(i.args) && /--omit=dev\b/.test(i.args)))) {
    problems.push('no `npm ci --omit=dev`');
  }

  // Packages: one install, fed from deploy/packages.txt through runtime-packages.sh, nothing else.
  const installs = stages.flatMap((s) => s.body.filter((i) => i.cmd === 'RUN' && /\b(apt-get|apt|aptitude)\s+(-\S+\s+)*install\b|\bdpkg\s+-i\b/.test(i.args)).map((i) => ({ s, i })));
  if (installs.length !== 1 || installs[0]?.s !== final) {
    problems.push(`expected exactly one apt-get install, in the final stage; found ${installs.length}`);
  }
  const install = installs[0]?.i;
  if (install) {
    const listCopy = copies.find((c) => c.sources.includes('deploy/packages.txt') && c.sources.includes('deploy/docker/runtime-packages.sh'));
    if (!listCopy) problems.push('deploy/packages.txt and deploy/docker/runtime-packages.sh are not copied in together');
    else if (listCopy.ins.line > install.line) problems.push('the package list is copied after the install');
    const dir = listCopy?.dest.endsWith('/') ? listCopy.dest : `${listCopy?.dest}/`;
    if (!install.args.includes(`${dir}runtime-packages.sh ${dir}packages.txt`)) {
      problems.push(`the install does not run ${dir}runtime-packages.sh on ${dir}packages.txt`);
    }
    const m = /\bxargs\s+apt-get\s+install((?:\s+-[^\s;&|]+)*)\s*([^;&|]*)/.exec(install.args);
    if (!m) problems.push('the package names do not reach `xargs apt-get install`');
    else if (m[2]?.trim()) problems.push(`apt-get install names packages of its own: ${m[2].trim()}`);
  }
  const listed = new Set(allNames);
  for (const s of stages) {
    for (const i of s.body.filter((x) => x.cmd === 'RUN')) {
      const named = i.args.split(/[\s;&|,"']+/).filter((w) => listed.has(w));
      if (named.length) problems.push(`line ${i.line}: RUN names listed packages itself: ${named.join(' ')}`);
    }
  }

  // Non-root user 1000 in the PulseAudio and audio groups.
  const useradd = final.body.find((i) => i.cmd === 'RUN' && /\buseradd\b/.test(i.args))?.args ?? '';
  const uid = /--uid\s+(\d+)/.exec(useradd)?.[1];
  const userName = /\buseradd\b.*\s(\w[\w-]*)\s*(;|&&|$)/.exec(useradd)?.[1];
  if (uid !== '1000') problems.push(`the user is not created with uid 1000 (${uid})`);
  const groups = /--groups\s+(\S+)/.exec(useradd)?.[1]?.split(',') ?? [];
  for (const g of ['pulse', 'pulse-access', 'audio']) if (!groups.includes(g)) problems.push(`the user is not in group ${g}`);
  const user = final.body.filter((i) => i.cmd === 'USER').at(-1)?.args.split(':')[0];
  if (!user) problems.push('no USER');
  else if (user === 'root' || user === '0') problems.push('USER is root');
  else if (user !== uid && user !== userName) problems.push(`USER ${user} is not the user created (${userName}, ${uid})`);

  // tini as PID 1, then the entrypoint script copied from deploy/docker/.
  const entry = final.body.filter((i) => i.cmd === 'ENTRYPOINT').at(-1)?.args ?? '';
  let argv: string[] = [];
  try {
    argv = JSON.parse(entry) as string[];
  } catch {
    problems.push('ENTRYPOINT is not in exec (JSON) form');
  }
  if (argv[0] !== '/usr/bin/tini' || !runtimeNames.includes('tini')) problems.push('ENTRYPOINT does not start with tini from the package list');
  const script = argv.find((a) => a.endsWith('/entrypoint.sh'));
  const scriptCopy = copies.find((c) => c.sources.includes('deploy/docker/entrypoint.sh'));
  const workdir = final.body.filter((i) => i.cmd === 'WORKDIR' && (!scriptCopy || i.line < scriptCopy.ins.line)).at(-1)?.args ?? '/';
  const copiedTo = scriptCopy && posix.resolve(workdir, scriptCopy.dest);
  if (!script || script !== copiedTo) problems.push(`ENTRYPOINT runs ${script}, the entrypoint is copied to ${copiedTo}`);

  // What is copied from the build context exists and is not excluded by .dockerignore.
  const ignore = dockerignore.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const s of stages) {
    for (const c of s.body.filter((i) => i.cmd === 'COPY' || i.cmd === 'ADD').map(copyParts)) {
      if (c.from) continue;
      for (const src of c.sources) {
        const rel = src.replace(/^\.\//, '').replace(/\/$/, '');
        if (!existsSync(join(ROOT, rel))) problems.push(`COPY ${src}: no such file`);
        else if (dockerIgnored(rel, ignore)) problems.push(`COPY ${src}: excluded by .dockerignore`);
      }
    }
  }
  return problems;
}

t.test('Dockerfile', async (t) => {
  const dockerfile = read('Dockerfile');
  const dockerignore = read('.dockerignore');
  t.same(dockerfileProblems(dockerfile, dockerignore), [], 'installs exactly deploy/packages.txt (less test-only), non-root, tini');
  t.ok(dockerIgnored('node_modules', dockerignore.split('\n')) && dockerIgnored('.git', dockerignore.split('\n')), '.dockerignore keeps node_modules and .git out');

  const broken: Record<string, string> = {
    'an extra apt-get install': dockerfile.replace(/^USER /m, 'RUN apt-get install -y curl\nUSER '),
    'package names written into the Dockerfile': dockerfile.replace(/xargs apt-get install -y --no-install-recommends/, 'xargs apt-get install -y --no-install-recommends chromium'),
    'the list not copied in': dockerfile.replace(/^COPY deploy\/packages\.txt /m, 'COPY '),
    'USER root': dockerfile.replace(/^USER .*$/m, 'USER root'),
    'no USER': dockerfile.replace(/^USER .*$/m, ''),
    'no tini': dockerfile.replace('"/usr/bin/tini", "--", ', ''),
    'node from bookworm': dockerfile.replace(/^COPY --from=node .*$/m, ''),
    'a COPY of a missing file': dockerfile.replace(/^COPY bin /m, 'COPY no-such-dir '),
    'a COPY of an ignored path': dockerfile.replace(/^COPY bin /m, 'COPY tests '),
  };
  for (const [what, text] of Object.entries(broken)) {
    t.not(text, dockerfile, `${what}: the mutation applies`);
    t.not(dockerfileProblems(text, dockerignore).length, 0, `${what}: caught`);
  }
});

t.test('deploy/docker/entrypoint.sh', async (t) => {
  const path = join(ROOT, 'deploy/docker/entrypoint.sh');
  const source = readFileSync(path, 'utf8');
  const syntax = run('bash', ['-n', path]);
  t.equal(syntax.code, 0, `bash -n: ${syntax.err}`);
  t.not(run('bash', ['-n'], { input: source.replace('esac', '') }).code, 0, 'bash -n catches a broken copy');
  t.ok(statSync(path).mode & 0o111, 'executable (the ENTRYPOINT runs it directly)');
  t.match(source, /^pulseaudio -D --exit-idle-time=-1 --disallow-exit$/m);
  t.match(source, /^exec "\$app_dir\/bin\/egress" serve "\$@"$/m);
  t.match(source, /^app_dir=\$\{EGRESS_APP_DIR:-\/app\}$/m, 'execs /app/bin/egress unless told otherwise');
});

t.test('entrypoint.sh clears the scratch dir, starts PulseAudio and execs `egress serve` with its arguments', async (t) => {
  // Runs the real script with a stand-in for bin/egress, as a non-root user like the image's.
  const dir = join(tmp, 'entrypoint');
  const [home, scratch, xdg, app] = ['home', 'scratch', 'xdg', 'app'].map((d) => join(dir, d)) as [string, string, string, string];
  mkdirSync(join(scratch, 'egress', 'EG_old'), { recursive: true });
  writeFileSync(join(scratch, 'egress', 'EG_old', 'segment.ts'), 'stale');
  writeFileSync(join(scratch, '.hidden'), 'stale');
  mkdirSync(join(home, '.config', 'pulse'), { recursive: true });
  mkdirSync(join(app, 'bin'), { recursive: true });
  const report = join(dir, 'report');
  writeFileSync(join(app, 'bin', 'egress'), [
    '#!/bin/sh',
    `{ echo "argv: $*"; echo "scratch: $(ls -A "$TMPDIR" | wc -l)"; pactl info | grep '^Server Name'; } > '${report}' 2>&1`,
    '',
  ].join('\n'));
  chmodSync(join(app, 'bin', 'egress'), 0o755);

  const env = { PATH: '/usr/bin:/bin', HOME: home, TMPDIR: scratch, XDG_RUNTIME_DIR: xdg, EGRESS_APP_DIR: app };
  const asUser: string[] = [];
  if (process.getuid?.() === 0) {
    const own = (p: string) => { chownSync(p, 65534, 65534); if (statSync(p).isDirectory()) readdirSync(p).forEach((e) => own(join(p, e))); };
    chmodSync(tmp, 0o755);
    own(dir);
    asUser.push('setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--');
  }
  const argv = [...asUser, join(ROOT, 'deploy/docker/entrypoint.sh'), '--config', '/etc/egress/config.yaml'];
  const r = run(argv[0] ?? '', argv.slice(1), { env });
  const pidFile = join(xdg, 'pulse', 'pid');
  t.teardown(() => {
    // Stop the PulseAudio this test started, by its pid, after checking it is that daemon.
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
    if (pid > 0 && existsSync(`/proc/${pid}/comm`) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'pulseaudio') process.kill(pid);
  });
  t.equal(r.code, 0, r.err);
  const out = existsSync(report) ? readFileSync(report, 'utf8') : '';
  t.match(out, /^argv: serve --config \/etc\/egress\/config\.yaml$/m, 'bin/egress serve gets the arguments');
  t.match(out, /^scratch: 0$/m, 'scratch dir emptied');
  t.match(out, /^Server Name: pulseaudio$/m, 'PulseAudio answers on $XDG_RUNTIME_DIR');
  t.ok(existsSync(scratch), 'scratch dir kept');

  const refused = run('bash', [join(ROOT, 'deploy/docker/entrypoint.sh')], { env: { ...env, TMPDIR: '/' } });
  t.not(refused.code, 0, 'refuses to clear /');
});

t.test('deploy/pulseaudio/egress.conf is read by PulseAudio with the intended values', async (t) => {
  // PulseAudio reads daemon.conf.d/ beside the daemon.conf it uses: put both in a private config home.
  const home = join(tmp, 'pulse-conf');
  const confDir = join(home, '.config', 'pulse');
  mkdirSync(join(confDir, 'daemon.conf.d'), { recursive: true });
  writeFileSync(join(confDir, 'daemon.conf'), '');
  const dump = (conf: string) => {
    writeFileSync(join(confDir, 'daemon.conf.d', 'egress.conf'), conf);
    return run('pulseaudio', ['-n', '--dump-conf'], { env: { PATH: '/usr/bin:/bin', HOME: home } });
  };
  const conf = read('deploy/pulseaudio/egress.conf');
  const ok = dump(conf);
  t.equal(ok.code, 0, ok.err);
  t.notMatch(ok.err, /^E:/m, 'no parse errors');
  t.match(ok.out, /^exit-idle-time = -1$/m);
  t.match(ok.out, /^rlimit-nofile = 65536$/m);
  t.match(dump(conf.replace('exit-idle-time', 'exit-idle-tim')).err, /Unknown lvalue 'exit-idle-tim'/, 'a typo is reported');
  t.ok(read('Dockerfile').includes('COPY deploy/pulseaudio/egress.conf /etc/pulse/daemon.conf.d/egress.conf'), 'the image installs it');
});

// --- systemd ------------------------------------------------------------------------------------------------

/** `systemd-analyze verify` output for a unit text: empty when the unit is clean. */
function verifyUnit(text: string): { code: number | null; output: string } {
  // verify wants ExecStart's binary to exist: point it at this checkout's bin/egress. The file keeps its
  // name, since verify derives the unit name from it.
  const dir = mkdtempSync(join(tmp, 'unit-'));
  mkdirSync(join(dir, 'opt-egress', 'bin'), { recursive: true });
  symlinkSync(join(ROOT, 'bin', 'egress'), join(dir, 'opt-egress', 'bin', 'egress'));
  const unit = join(dir, 'egress.service');
  writeFileSync(unit, text.replaceAll('ExecStart=/opt/egress/bin/egress ', `ExecStart=${join(dir, 'opt-egress', 'bin', 'egress')} `));
  const r = run('systemd-analyze', ['verify', unit]);
  return { code: r.code, output: (r.out + r.err).trim() };
}

/** Last value of each key of the [Service] section. */
function serviceKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line.trim());
    if (s?.[1]) section = s[1];
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (section === 'Service' && kv?.[1]) keys.set(kv[1], kv[2] ?? '');
  }
  return keys;
}

t.test('deploy/systemd/egress.service', async (t) => {
  const unit = read('deploy/systemd/egress.service');
  const verified = verifyUnit(unit);
  t.equal(verified.code, 0, 'systemd-analyze verify exits 0');
  t.equal(verified.output, '', 'and prints no warning');
  // verify only warns about unknown keys and bad values: the empty output is what catches them.
  t.not(verifyUnit(unit.replace(/^KillMode=mixed$/m, 'KillMode=mixd')).output, '', 'a bad value is caught');
  t.not(verifyUnit(unit.replace(/^KillMode=mixed$/m, 'KilMode=mixed')).output, '', 'an unknown key is caught');
  t.not(verifyUnit(unit.replace('ExecStart=/opt/egress/bin/egress ', 'ExecStart=/opt/egress/bin/egres ')).code, 0, 'a missing binary is caught');

  const keys = serviceKeys(unit);
  t.equal(keys.get('ExecStart'), '/opt/egress/bin/egress serve --config /etc/egress/config.yaml');
  t.ok(['simple', 'notify'].includes(keys.get('Type') ?? ''), 'Type');
  t.equal(keys.get('User'), 'egress');
  t.equal(keys.get('Restart'), 'on-failure');
  t.match(keys.get('RestartSec') ?? '', /^\d+s?$/);
  t.equal(keys.get('KillSignal'), 'SIGTERM', 'stop = drain');
  t.equal(keys.get('KillMode'), 'mixed', 'SIGTERM to the node only');
  t.equal(keys.get('TimeoutStopSec'), '6h', 'long enough to drain');
  t.equal(keys.get('LimitNOFILE'), '65536');
  t.match(unit, /^Environment=NODE_ENV=production$/m);
  for (const [k, v] of [['NoNewPrivileges', 'true'], ['PrivateTmp', 'true'], ['ProtectSystem', 'full']] as const) t.equal(keys.get(k), v, k);
  t.match(keys.get('ReadWritePaths') ?? '', /\/var\/lib\/egress/);
  t.notOk(keys.has('MemoryDenyWriteExecute'), 'no W^X: V8 JIT needs it');
});

// --- Kubernetes ---------------------------------------------------------------------------------------------

interface Manifest { file: string; index: number; body: Record<string, unknown> & { apiVersion: string; kind: string } }

function loadManifests(): Manifest[] {
  const dir = join(ROOT, 'deploy/kubernetes');
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).flatMap((doc, index) => {
      if (doc.errors.length) throw new Error(`${file} #${index}: ${doc.errors[0]?.message}`);
      const body = doc.toJS() as Manifest['body'] | null;
      return body ? [{ file, index, body }] : [];
    }));
}

/** Schema validation: the ajv-compiled Kubernetes OpenAPI schemas of `kubernetes-models`. */
async function schemaErrors(m: Manifest): Promise<string | undefined> {
  const { apiVersion, kind } = m.body;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return 'no apiVersion/kind';
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  } catch {
    return `unknown apiVersion ${apiVersion}`;
  }
  const Model = mod[kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return `unknown kind ${apiVersion} ${kind}`;
  try {
    new Model(m.body).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Strict field check: the same package's TypeScript interfaces (generated from the same OpenAPI spec)
 * reject properties the API does not define, which the schemas let through. One diagnostic list per manifest.
 */
function typeErrors(manifests: Manifest[]): string[][] {
  const file = join(ROOT, 'tests/unit/__deploy_manifests__.mts');
  const imports = manifests.map((m, i) => `import type { I${m.body.kind} as T${i} } from 'kubernetes-models/${m.body.apiVersion}';`);
  const decls = manifests.map((m, i) => `export const doc${i}: T${i} = ${JSON.stringify(m.body)};`);
  const source = [...imports, ...decls, ''].join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [],
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest));
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file);
  const out = manifests.map((): string[] => []);
  for (const d of ts.getPreEmitDiagnostics(program, sf)) {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    const i = line < manifests.length ? line : line - manifests.length; // an import line or a declaration line
    out[Math.min(i, manifests.length - 1)]?.push(ts.flattenDiagnosticMessageText(d.messageText, ' '));
  }
  return out;
}

const manifests = loadManifests();
const kindOf = (kind: string) => manifests.filter((m) => m.body.kind === kind).map((m) => m.body as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('deploy/kubernetes: every manifest is valid against the Kubernetes schemas', async (t) => {
  t.same(
    [...new Set(manifests.map((m) => m.body.kind))].sort(),
    ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service'],
    'the expected objects',
  );
  const typed = typeErrors(manifests);
  for (const [i, m] of manifests.entries()) {
    const label = `${m.file}#${m.index} ${m.body.kind}`;
    t.equal(await schemaErrors(m), undefined, `${label}: schema`);
    t.same(typed[i], [], `${label}: no unknown or mistyped fields`);
  }
});

t.test('deploy/kubernetes: broken manifests fail validation', async (t) => {
  const [deployment] = manifests.filter((m) => m.body.kind === 'Deployment');
  if (!deployment) return t.fail('no Deployment');
  const variant = (edit: (d: any) => void): Manifest => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const body = structuredClone(deployment.body);
    edit(body);
    return { ...deployment, body };
  };
  const wrongType = variant((d) => { d.spec.replicas = 'two'; });
  const noName = variant((d) => { delete d.spec.template.spec.containers[0].name; });
  const badEnum = variant((d) => { d.spec.template.spec.securityContext.seccompProfile.type = 'localhost'; });
  const typo = variant((d) => { d.spec.template.spec.terminationGracePeriodSecond = d.spec.template.spec.terminationGracePeriodSeconds; });
  const unknownKind = variant((d) => { d.kind = 'Deploymnet'; });

  t.match(await schemaErrors(wrongType), /replicas must be integer/);
  t.match(await schemaErrors(noName), /must have required property '?name'?/);
  t.match(await schemaErrors(badEnum), /must be equal to one of the allowed values/);
  t.match(await schemaErrors(unknownKind), /unknown kind/);
  // The schemas, like the API server, accept unknown fields; the strict check does not.
  t.equal(await schemaErrors(typo), undefined, 'a misspelt field passes the schema…');
  const [typoErrors, wrongTypeErrors] = typeErrors([typo, wrongType]);
  t.match(typoErrors?.join('\n'), /'"?terminationGracePeriodSecond"?' does not exist/, '…but not the strict check');
  t.match(wrongTypeErrors?.join('\n'), /not assignable to type 'number'/);
});

t.test('deploy/kubernetes: the Deployment drains, probes /healthz and matches the ConfigMap', async (t) => {
  const [deployment] = kindOf('Deployment');
  const [configMap] = kindOf('ConfigMap');
  const [service] = kindOf('Service');
  if (!deployment || !configMap || !service) return t.fail('missing objects');
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const env = Object.fromEntries(container.env.map((e: { name: string }) => [e.name, e]));

  t.ok(pod.terminationGracePeriodSeconds >= 6 * 3600, 'terminationGracePeriodSeconds gives jobs hours to drain');
  t.ok(deployment.spec.replicas >= 1, 'replicas');
  t.match(pod.securityContext, { runAsUser: 1000, runAsNonRoot: true, seccompProfile: { type: 'Localhost' } });
  t.equal(basename(pod.securityContext.seccompProfile.localhostProfile), 'chrome-sandboxing-seccomp-profile.json', 'the profile shipped in deploy/seccomp');
  t.match(container.securityContext, { allowPrivilegeEscalation: false });
  t.equal(container.resources.requests.cpu, '4');
  t.ok(container.resources.limits.memory, 'memory limit');
  t.same(env.LIVEKIT_CPU_REQUEST.valueFrom.resourceFieldRef, { containerName: container.name, resource: 'requests.cpu', divisor: '1' });

  // The config file: the ConfigMap key, mounted where EGRESS_CONFIG_FILE points.
  const configVolume = pod.volumes.find((v: any) => v.configMap?.name === configMap.metadata.name); // eslint-disable-line @typescript-eslint/no-explicit-any
  const mount = container.volumeMounts.find((m: { name: string }) => m.name === configVolume?.name);
  const item = configVolume?.configMap.items?.[0];
  t.equal(env.EGRESS_CONFIG_FILE?.value, posix.join(mount?.mountPath ?? '?', item?.path ?? '?'), 'EGRESS_CONFIG_FILE is the mounted ConfigMap');
  t.ok(configMap.data[item?.key], 'the ConfigMap has that key');

  // The node's own loader accepts that config, with the credentials the Secret provides.
  const { config, warnings } = loadConfig({ body: configMap.data[item.key], env: { LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's', LIVEKIT_CPU_REQUEST: '4' } });
  t.same(warnings, [], 'no unknown keys');
  t.equal(config.cpuCost.capacity, 4, 'LIVEKIT_CPU_REQUEST sets the capacity');
  const port = (name: string) => container.ports.find((p: { name: string }) => p.name === name)?.containerPort;
  t.equal(port('health'), config.healthPort, 'health port = health_port');
  t.equal(port('metrics'), config.prometheusPort, 'metrics port = prometheus_port');
  for (const probe of [container.readinessProbe, container.livenessProbe]) t.match(probe.httpGet, { path: '/healthz', port: 'health' });
  t.ok(container.volumeMounts.some((m: { mountPath: string }) => config.tmpDir.startsWith(`${m.mountPath}/`)), 'tmp_dir is on a volume');

  t.same(service.spec.selector, deployment.spec.selector.matchLabels, 'the Service selects the pods');
  t.match(service.spec.ports, [{ name: 'metrics', targetPort: 'metrics' }]);
});

// --- seccomp ------------------------------------------------------------------------------------------------

interface SeccompRule { names: string[]; action: string; args?: unknown[]; includes?: object; excludes?: object }

/** Problems of a Chrome seccomp profile: a deny-by-default allow list in which clone and unshare always pass. */
function seccompProblems(text: string): string[] {
  let p: { defaultAction?: string; syscalls?: SeccompRule[] };
  try {
    p = JSON.parse(text) as typeof p;
  } catch (err) {
    return [`not JSON: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  if (p.defaultAction !== 'SCMP_ACT_ERRNO') problems.push(`defaultAction is ${p.defaultAction}`);
  const rules = p.syscalls ?? [];
  const actions = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']);
  for (const r of rules) {
    if (!actions.has(r.action)) problems.push(`unknown action ${r.action}`);
    if (!Array.isArray(r.names) || !r.names.length) problems.push('a rule without names');
  }
  const always = new Set(rules.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args?.length && !r.includes && !r.excludes).flatMap((r) => r.names));
  for (const name of ['clone', 'unshare', 'execve', 'mmap', 'futex', 'epoll_pwait', 'openat', 'read', 'write']) {
    if (!always.has(name)) problems.push(`${name} is not allowed unconditionally`);
  }
  return problems;
}

t.test('deploy/seccomp/chrome-sandboxing-seccomp-profile.json', async (t) => {
  const text = read('deploy/seccomp/chrome-sandboxing-seccomp-profile.json');
  t.same(seccompProblems(text), [], 'SCMP_ACT_ERRNO by default; clone and unshare allowed');
  const profile = JSON.parse(text) as { syscalls: SeccompRule[] };
  t.ok(profile.syscalls.reduce((n, r) => n + r.names.length, 0) > 300, "Docker's full default list, not an excerpt");

  const without = (name: string) => JSON.stringify({ ...profile, syscalls: profile.syscalls.map((r) => ({ ...r, names: r.names.filter((n) => n !== name) })) });
  t.match(seccompProblems(without('unshare')), ['unshare is not allowed unconditionally']);
  t.match(seccompProblems(without('clone')), ['clone is not allowed unconditionally']);
  t.match(seccompProblems(text.replace('"SCMP_ACT_ERRNO"', '"SCMP_ACT_ALLOW"')), ['defaultAction is SCMP_ACT_ALLOW']);
  t.not(seccompProblems(text.slice(0, -3)).length, 0, 'truncated JSON');
});
