import assert from "node:assert/strict";
import { CliError, cliHelp, parseCli } from "../../src/cli.ts";

const CONNSTR = "postgresql://cloud_admin@localhost:55432/postgres";

/** The arguments every valid command line needs, with a config file as the source. */
const base = (...extra: string[]) => [
  "-D",
  "/tmp/pgdata",
  "-C",
  CONNSTR,
  "-i",
  "compute-one",
  "-c",
  "/tmp/config.json",
  ...extra,
];

function cliError(argv: string[], env: Record<string, string | undefined> = {}): CliError {
  try {
    parseCli(argv, env);
  } catch (error) {
    assert.ok(error instanceof CliError, `expected CliError, got ${error}`);
    return error;
  }
  assert.fail(`accepted: ${argv.join(" ")}`);
}

Deno.test("Neon's own invocation line (neon_local) is accepted", () => {
  const options = parseCli([
    "--external-http-port",
    "3080",
    "--internal-http-port",
    "3081",
    "--pgdata",
    "/tmp/ep/pgdata",
    "--connstr",
    CONNSTR,
    "--config",
    "/tmp/ep/config.json",
    "--pgbin",
    "/usr/lib/postgresql/15/bin/postgres",
    "--compute-id",
    "compute-1234",
    "--remote-ext-base-url",
    "http://127.0.0.1:9999",
    "--dev",
    "--privileged-role-name",
    "my_superuser",
  ], {});
  assert.equal(options.externalHttpPort, 3080);
  assert.equal(options.internalHttpPort, 3081);
  assert.equal(options.pgdata, "/tmp/ep/pgdata");
  assert.ok(options.connstr instanceof URL);
  assert.equal(options.connstr.href, CONNSTR);
  assert.equal(options.connstr.port, "55432");
  assert.equal(options.config, "/tmp/ep/config.json");
  assert.equal(options.controlPlaneUri, undefined);
  assert.equal(options.pgbin, "/usr/lib/postgresql/15/bin/postgres");
  assert.equal(options.computeId, "compute-1234");
  assert.equal(options.remoteExtBaseUrl, "http://127.0.0.1:9999/");
  assert.equal(options.dev, true);
  assert.equal(options.privilegedRoleName, "my_superuser");
});

Deno.test("defaults match compute_ctl's, plus ours", () => {
  const options = parseCli(base(), {});
  assert.deepEqual(
    { ...options, connstr: options.connstr.href },
    {
      pgbin: "postgres",
      remoteExtBaseUrl: undefined,
      externalHttpPort: 3080,
      internalHttpPort: 3081,
      httpPort: undefined,
      pgdata: "/tmp/pgdata",
      connstr: CONNSTR,
      privilegedRoleName: "neon_superuser",
      cgroup: "neon-postgres",
      filecacheConnstr:
        "host=localhost port=5432 dbname=postgres user=cloud_admin sslmode=disable application_name=vm-monitor",
      vmMonitorAddr: "0.0.0.0:10301",
      resizeSwapOnBind: false,
      setDiskQuotaForFs: undefined,
      config: "/tmp/config.json",
      controlPlaneUri: undefined,
      computeId: "compute-one",
      installedExtensionsCollectionIntervalSeconds: 3600,
      dev: false,
      pgInitTimeoutSeconds: undefined,
      lakebaseMode: false,
      exitDelayMs: 30000,
      tlsCertCheckIntervalMs: 60000,
      externalHttpBind: "0.0.0.0",
      internalHttpBind: "127.0.0.1",
      enableFailpoints: false,
    },
  );
});

Deno.test("short flags, --flag=value and every remaining flag parse", () => {
  const options = parseCli([
    "-D/tmp/pg",
    "-C",
    CONNSTR,
    "-i",
    "c",
    "-p",
    "http://127.0.0.1:9090",
    "-b",
    "/opt/pg/bin/postgres",
    "-r",
    "https://ext.example.com/base",
    "--cgroup=other",
    "--filecache-connstr",
    "host=/tmp",
    "--vm-monitor-addr",
    "127.0.0.1:1",
    "--resize-swap-on-bind",
    "--set-disk-quota-for-fs",
    "/mnt/data",
    "--installed-extensions-collection-interval",
    "60",
    "--pg-init-timeout",
    "90",
    "--lakebase-mode",
    "false",
    "--exit-delay-ms",
    "0",
    "--tls-cert-check-interval-ms",
    "250",
    "--internal-http-bind",
    "::",
    "--external-http-bind",
    "127.0.0.1",
  ], {});
  assert.equal(options.pgdata, "/tmp/pg");
  assert.equal(options.controlPlaneUri, "http://127.0.0.1:9090");
  assert.equal(options.config, undefined);
  assert.equal(options.pgbin, "/opt/pg/bin/postgres");
  assert.equal(options.remoteExtBaseUrl, "https://ext.example.com/base/");
  assert.equal(options.cgroup, "other");
  assert.equal(options.filecacheConnstr, "host=/tmp");
  assert.equal(options.vmMonitorAddr, "127.0.0.1:1");
  assert.equal(options.resizeSwapOnBind, true);
  assert.equal(options.setDiskQuotaForFs, "/mnt/data");
  assert.equal(options.installedExtensionsCollectionIntervalSeconds, 60);
  assert.equal(options.pgInitTimeoutSeconds, 90);
  assert.equal(options.lakebaseMode, false);
  assert.equal(options.exitDelayMs, 0);
  assert.equal(options.tlsCertCheckIntervalMs, 250);
  assert.equal(options.internalHttpBind, "::");
  assert.equal(options.externalHttpBind, "127.0.0.1");
});

Deno.test("-c together with -p is rejected", () => {
  const error = cliError([...base(), "-p", "http://127.0.0.1:9090"]);
  assert.equal(error.exitCode, 2);
  assert.match(error.message, /--config.*cannot be used with.*--control-plane-uri/);
});

Deno.test("neither -c nor -p is a clear error", () => {
  const error = cliError(["-D", "/tmp/pgdata", "-C", CONNSTR, "-i", "c"]);
  assert.equal(error.message, "one of -c/--config or -p/--control-plane-uri is required");
  assert.equal(error.exitCode, 2);
});

Deno.test("required flags: --pgdata, --connstr, --compute-id", () => {
  assert.match(cliError(["-C", CONNSTR, "-i", "c", "-c", "f"]).message, /--pgdata.*not specified/);
  assert.match(cliError(["-D", "d", "-i", "c", "-c", "f"]).message, /--connstr.*not specified/);
  assert.match(
    cliError(["-D", "d", "-C", CONNSTR, "-c", "f"]).message,
    /--compute-id.*not specified/,
  );
});

Deno.test("privileged role name must match ^[a-z_]+$", () => {
  for (const bad of ["Neon_superuser", "neon-superuser", "neon superuser", "role1", ""]) {
    const error = cliError(base("--privileged-role-name", bad));
    assert.match(error.message, /--privileged-role-name.*\^\[a-z_\]\+\$/);
  }
  assert.equal(parseCli(base("--privileged-role-name", "_a_b"), {}).privilegedRoleName, "_a_b");
});

Deno.test("--connstr must be a URL", () => {
  const error = cliError(["-D", "d", "-C", "host=localhost port=5432", "-i", "c", "-c", "f"]);
  assert.match(error.message, /--connstr.*not a valid URL/);
  assert.match(cliError(base("-p", "not a url")).message, /cannot be used with|not a valid URL/);
  assert.match(
    cliError(["-D", "d", "-C", CONNSTR, "-i", "c", "-p", "nope"]).message,
    /--control-plane-uri.*not a valid URL/,
  );
});

Deno.test("ports must be integers from 1 to 65535", () => {
  for (const bad of ["0", "65536", "-1", "80.5", "http", "", "1e3"]) {
    for (const flag of ["--external-http-port", "--internal-http-port", "--http-port"]) {
      const error = cliError(base(flag, bad));
      assert.match(error.message, /port number from 1 to 65535/, `${flag} ${bad}`);
    }
  }
  const options = parseCli(base("--external-http-port", "1", "--internal-http-port", "65535"), {});
  assert.equal(options.externalHttpPort, 1);
  assert.equal(options.internalHttpPort, 65535);
});

Deno.test("POSTGRES_PATH is the fallback for --pgbin", () => {
  assert.equal(parseCli(base(), { POSTGRES_PATH: "/env/bin/postgres" }).pgbin, "/env/bin/postgres");
  assert.equal(
    parseCli(base("-b", "/flag/bin/postgres"), { POSTGRES_PATH: "/env/bin/postgres" }).pgbin,
    "/flag/bin/postgres",
  );
  assert.equal(parseCli(base(), { POSTGRES_PATH: "" }).pgbin, "postgres");
  assert.equal(parseCli(base(), {}).pgbin, "postgres");
});

Deno.test("--http-port conflicts with explicit ports and only counts in lakebase mode", () => {
  assert.match(
    cliError(base("--http-port", "5000", "--external-http-port", "3080")).message,
    /--http-port.*cannot be used with.*--external-http-port/,
  );
  assert.match(
    cliError(base("--internal-http-port", "3081", "--http-port", "5000")).message,
    /cannot be used with/,
  );

  const ignored = parseCli(base("--http-port", "5000"), {});
  assert.equal(ignored.httpPort, 5000);
  assert.equal(ignored.externalHttpPort, 3080);
  assert.equal(ignored.internalHttpPort, 3081);

  const lakebase = parseCli(base("--http-port", "5000", "--lakebase-mode", "true"), {});
  assert.equal(lakebase.lakebaseMode, true);
  assert.equal(lakebase.externalHttpPort, 5000);
  assert.equal(lakebase.internalHttpPort, 5001);

  assert.match(
    cliError(base("--http-port", "65535", "--lakebase-mode", "true")).message,
    /no room/,
  );
});

Deno.test("--lakebase-mode takes true or false", () => {
  assert.equal(parseCli(base("--lakebase-mode", "true"), {}).lakebaseMode, true);
  assert.match(cliError(base("--lakebase-mode", "yes")).message, /true or false/);
  assert.match(cliError(base("--lakebase-mode")).message, /argument missing/);
});

Deno.test("--remote-ext-base-url: trailing slashes collapse to one, query rejected", () => {
  const url = (value: string) => parseCli(base("-r", value), {}).remoteExtBaseUrl;
  assert.equal(url("http://ext.local"), "http://ext.local/");
  assert.equal(url("http://ext.local/"), "http://ext.local/");
  assert.equal(url("http://ext.local///"), "http://ext.local/");
  assert.equal(url("http://ext.local/a/b//"), "http://ext.local/a/b/");
  assert.match(cliError(base("-r", "http://ext.local/?a=1")).message, /query string/);
  assert.match(cliError(base("-r", "http://ext.local/?")).message, /query string/);
  assert.match(cliError(base("-r", "ext.local")).message, /not a valid URL/);
});

Deno.test("numeric options reject garbage", () => {
  assert.match(cliError(base("--exit-delay-ms", "-5")).message, /non-negative integer/);
  assert.match(cliError(base("--exit-delay-ms", "1.5")).message, /non-negative integer/);
  assert.match(
    cliError(base("--installed-extensions-collection-interval", "x")).message,
    /non-negative integer/,
  );
  assert.match(cliError(base("--pg-init-timeout", "")).message, /non-negative integer/);
});

Deno.test("unknown flags, stray arguments and repeated flags are rejected", () => {
  assert.match(cliError(base("--bogus")).message, /unknown option '--bogus'/);
  assert.match(cliError(base("-S", "spec.json")).message, /unknown option '-S'/);
  assert.match(cliError(base("extra")).message, /too many arguments/);
  assert.match(cliError(base("-D", "/other")).message, /--pgdata may be given only once/);
});

Deno.test("--internal-http-bind must be an address", () => {
  assert.match(cliError(base("--internal-http-bind", " ")).message, /IP address or host name/);
  assert.equal(parseCli(base("--internal-http-bind", "0.0.0.0"), {}).internalHttpBind, "0.0.0.0");
});

Deno.test("--help arrives as a CliError with exit code 0 and lists every flag", () => {
  for (const flag of ["--help", "-h"]) {
    const error = cliError([flag]);
    assert.equal(error.exitCode, 0);
    assert.equal(error.message, cliHelp());
  }
  // Descriptions wrap; compare with runs of white space collapsed.
  const help = cliHelp().replace(/\s+/g, " ");
  const flags = [
    "-b, --pgbin",
    "-r, --remote-ext-base-url",
    "--external-http-port",
    "--internal-http-port",
    "--http-port",
    "-D, --pgdata",
    "-C, --connstr",
    "--privileged-role-name",
    "--cgroup",
    "--filecache-connstr",
    "--vm-monitor-addr",
    "--resize-swap-on-bind",
    "--set-disk-quota-for-fs",
    "-c, --config",
    "-i, --compute-id",
    "-p, --control-plane-uri",
    "--installed-extensions-collection-interval",
    "--dev",
    "--pg-init-timeout",
    "--lakebase-mode",
    "--exit-delay-ms",
    "--tls-cert-check-interval-ms",
    "--internal-http-bind",
    "-h, --help",
  ];
  for (const flag of flags) assert.ok(help.includes(flag), `help lacks ${flag}`);
  assert.ok(help.includes("POSTGRES_PATH"));
  assert.ok(help.includes("(default: 3080)"));
  assert.ok(help.includes("(default: 30000)"));
  // The VM-only and lakebase flags say they do nothing here.
  const unsupported = help.split("not supported here").length - 1;
  assert.ok(unsupported >= 7, `only ${unsupported} flags marked as not supported`);
});
