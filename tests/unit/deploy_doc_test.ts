/**
 * docs/deploy.md's Kubernetes manifests: every ```yaml block parses, and what
 * the manifests say agrees with the Containerfile (image name, uid), deno.json
 * (the `compute` set's `net` list an `--allow-net` must repeat), the manager's
 * flags and routes (probe port and path) and the spec schema (the ConfigMap's
 * config.json). Also: the Containerfile's build stage has every harness module
 * it runs.
 */

import assert from "node:assert/strict";
import { posix } from "node:path";
import { parseAllDocuments } from "yaml";
import { computeConfigSchema } from "../../src/api/config.ts";
import { parseSpec } from "../../src/api/parsed_spec.ts";
import { metricsRoute } from "../../src/http/routes/metrics.ts";
import { IMAGE_REPOSITORY } from "../container/_podman.ts";

const ROOT = new URL("../../", import.meta.url);
const DOC = Deno.readTextFileSync(new URL("docs/deploy.md", ROOT));
const CONTAINERFILE = Deno.readTextFileSync(new URL("Containerfile", ROOT));
const COMPUTE_NET: string[] = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)))
  .permissions.compute.net;

const PGDATA = "/var/db/postgres/compute";
const SPECS_DIR = "/var/db/postgres/specs";
/** The manager's default `--external-http-port` (Neon's). */
const DEFAULT_EXTERNAL_PORT = 3080;

/** The parts of a container spec the checks read. */
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface Probe {
  httpGet?: { path: string; port: number | string };
}

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
}

interface PodSpec {
  securityContext?: SecurityContext;
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: object }[];
}

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: PodSpec & {
    replicas?: number;
    strategy?: { type: string };
    template?: { spec: PodSpec };
  };
}

/** The bodies of the markdown's ```yaml fences. */
function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

function manifests(): Manifest[] {
  return yamlBlocks(DOC).flatMap((block) =>
    parseAllDocuments(block).map((document) => document.toJS() as Manifest)
  );
}

/** The workloads that run the image, with their pod specs. */
function computeWorkloads(): { manifest: Manifest; pod: PodSpec; container: Container }[] {
  return manifests().flatMap((manifest) => {
    const pod = manifest.kind === "Pod" ? manifest.spec : manifest.spec?.template?.spec;
    const container = pod?.containers.find((c) => c.image.includes(IMAGE_REPOSITORY));
    return pod && container ? [{ manifest, pod, container }] : [];
  });
}

/** The value of `--name` in `args` (`--name value` or `--name=value`), or undefined. */
function flag(args: readonly string[], name: string): string | undefined {
  for (const [index, arg] of args.entries()) {
    if (arg === name) return args[index + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}

/** The uid the Containerfile creates the user with and runs as; both must agree. */
function containerfileUid(): number {
  const created = /useradd --uid (\d+)/.exec(CONTAINERFILE)?.[1];
  const user = /^USER (\d+)(?::\d+)?$/m.exec(CONTAINERFILE)?.[1];
  assert.ok(created && user, "the Containerfile creates a user by uid and runs as a numeric USER");
  assert.equal(user, created);
  return Number(user);
}

Deno.test("every yaml block of docs/deploy.md parses without errors or warnings", () => {
  const blocks = yamlBlocks(DOC);
  assert.ok(blocks.length >= 2, "a ConfigMap-driven compute and a control-plane pool");
  for (const block of blocks) {
    for (const document of parseAllDocuments(block)) {
      assert.deepEqual(document.errors, [], String(document.errors));
      assert.deepEqual(document.warnings, [], String(document.warnings));
    }
  }
  const kinds = new Set(manifests().map((manifest) => manifest.kind));
  assert.ok(kinds.has("ConfigMap") && kinds.has("Deployment"), [...kinds].join(", "));
});

Deno.test("the image is the one the Containerfile and the docs build", () => {
  const built = [...`${CONTAINERFILE}\n${DOC}`.matchAll(/ -t (\S+)/g)].map((match) => match[1]);
  assert.ok(built.length >= 2, "build commands with -t in the Containerfile and the docs");
  for (const tag of built) assert.match(tag, new RegExp(`^${IMAGE_REPOSITORY}:pg1[4-7]$`));
  const workloads = computeWorkloads();
  assert.ok(workloads.length >= 2);
  for (const { container } of workloads) {
    assert.match(container.image, new RegExp(`(^|/)${IMAGE_REPOSITORY}:pg1[4-7]$`));
  }
});

Deno.test("computes run from Neon's directories as the Containerfile's unprivileged user", () => {
  const uid = containerfileUid();
  for (const { pod, container } of computeWorkloads()) {
    const args = container.args ?? [];
    assert.equal(flag(args, "--pgdata"), PGDATA);
    const security = { ...pod.securityContext, ...container.securityContext };
    assert.equal(security.runAsNonRoot, true);
    assert.equal(security.runAsUser, uid);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    // PGDATA is recreated on every start, so it lies inside the volume, never is one.
    const mounts = container.volumeMounts ?? [];
    assert.ok(!mounts.some((mount) => mount.mountPath === PGDATA));
    const data = mounts.find((mount) => mount.mountPath === posix.dirname(PGDATA));
    assert.ok(data, `a volume at ${posix.dirname(PGDATA)}`);
    assert.ok(pod.volumes?.find((volume) => volume.name === data.name)?.emptyDir);
    for (const kind of ["requests", "limits"] as const) {
      assert.ok(container.resources?.[kind]?.cpu && container.resources[kind].memory, kind);
    }
  }
});

Deno.test("the probes ask the external port's unauthenticated /metrics", () => {
  const metrics = metricsRoute();
  assert.equal(metrics.auth, false);
  for (const { container } of computeWorkloads()) {
    const port = Number(
      flag(container.args ?? [], "--external-http-port") ?? DEFAULT_EXTERNAL_PORT,
    );
    assert.ok(container.ports?.some((p) => p.containerPort === port));
    assert.equal(flag(container.args ?? [], "--external-http-bind"), undefined, "binds 0.0.0.0");
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      assert.equal(probe?.httpGet?.path, metrics.path);
      assert.equal(Number(probe?.httpGet?.port), port);
    }
  }
});

Deno.test("a ConfigMap compute reads a valid config from the specs directory", () => {
  const all = manifests();
  const fromFile = computeWorkloads().filter(({ container }) =>
    flag(container.args ?? [], "--config") !== undefined
  );
  assert.ok(fromFile.length >= 1);
  for (const { manifest, pod, container } of fromFile) {
    const args = container.args ?? [];
    const configPath = flag(args, "--config")!;
    assert.equal(posix.dirname(configPath), SPECS_DIR);
    const mount = container.volumeMounts?.find((m) => m.mountPath === SPECS_DIR);
    assert.equal(mount?.readOnly, true);
    const configMapName = pod.volumes?.find((volume) => volume.name === mount!.name)?.configMap
      ?.name;
    const configMap = all.find((m) => m.kind === "ConfigMap" && m.metadata.name === configMapName);
    const text = configMap?.data?.[posix.basename(configPath)];
    assert.ok(text, `ConfigMap ${configMapName} has ${posix.basename(configPath)}`);

    const config = computeConfigSchema.parse(JSON.parse(text));
    assert.ok(config.spec, "the config carries a spec");
    assert.ok(config.compute_ctl_config.jwks.keys.length > 0, "a key for the HTTP API's JWTs");
    const parsed = parseSpec(config.spec);
    const pgPort = /^port=(\d+)$/m.exec(config.spec.cluster.postgresql_conf ?? "")?.[1];
    assert.equal(new URL(flag(args, "--connstr")!).port, pgPort, "--connstr names the spec's port");
    assert.match(config.spec.cluster.postgresql_conf ?? "", /^unix_socket_directories='\/tmp'$/m);

    const hosts = [
      ...Object.values(parsed.pageserverConnInfo.shards).flatMap((shard) =>
        shard.pageservers.map((pageserver) => new URL(pageserver.libpq_url!).hostname)
      ),
      ...parsed.safekeeperConnstrings.map((entry) => entry.slice(0, entry.lastIndexOf(":"))),
    ];
    assertNetGrants(container, hosts);
    // One primary per timeline, also during a rollout.
    assert.equal(manifest.spec?.replicas, 1);
    assert.equal(manifest.spec?.strategy?.type, "Recreate");
  }
});

Deno.test("a pool compute asks the control plane under its pod's name", () => {
  const pooled = computeWorkloads().filter(({ container }) =>
    flag(container.args ?? [], "--control-plane-uri") !== undefined
  );
  assert.ok(pooled.length >= 1);
  for (const { container } of pooled) {
    const args = container.args ?? [];
    assertNetGrants(container, [new URL(flag(args, "--control-plane-uri")!).hostname]);
    const variable = /^\$\((\w+)\)$/.exec(flag(args, "--compute-id") ?? "")?.[1];
    const env = container.env?.find((entry) => entry.name === variable);
    assert.equal(env?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
  }
});

Deno.test("the Containerfile copies every module its `deno task pg` step imports", () => {
  const copy = /^COPY (harness\/\S+(?: harness\/\S+)*) harness\/$/m.exec(CONTAINERFILE);
  assert.ok(copy, "a COPY of harness modules into harness/");
  const copied = new Set(copy[1].split(" "));
  assert.ok(copied.has("harness/pg_cli.ts"));
  for (const file of copied) {
    const source = Deno.readTextFileSync(new URL(file, ROOT));
    for (const [, specifier] of source.matchAll(/^import [^"]*"(\.[^"]+)";$/gm)) {
      const imported = posix.join(posix.dirname(file), specifier);
      assert.ok(copied.has(imported), `${file} imports ${imported}, which is not copied`);
    }
  }
});

/**
 * Checks that `container` may connect to every host of `hosts`: it runs the
 * manager under `-P=compute` with an `--allow-net` that repeats the set's
 * `net` list (a flag replaces it) and adds those hosts.
 */
function assertNetGrants(container: Container, hosts: readonly string[]): void {
  const command = container.command ?? [];
  assert.deepEqual(command.slice(0, 3), ["deno", "run", "-P=compute"]);
  assert.equal(command.at(-1), "src/main.ts");
  const granted = new Set(flag(command, "--allow-net")?.split(",") ?? []);
  for (const entry of COMPUTE_NET) assert.ok(granted.has(entry), `--allow-net repeats ${entry}`);
  for (const host of hosts) assert.ok(granted.has(host), `--allow-net grants ${host}`);
}
