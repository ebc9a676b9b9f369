/**
 * fast_import's command line: Neon's flags and subcommands, the environment
 * fallbacks (flag first, an empty variable is unset), clap's exit codes
 * (2 for usage, 0 for help), and the S3 prefix refused with what to use instead.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_PG_PORT,
  ENV_FALLBACKS,
  fastImportHelp,
  parseFastImportArgs,
  UsageError,
} from "../../../src/fast_import/cli.ts";

const GLOBAL = [
  "--working-directory",
  "/tmp/w",
  "--pg-bin-dir",
  "/pg/bin",
  "--pg-lib-dir",
  "/pg/lib",
];
const SOURCE = "postgresql://u:p@127.0.0.1:5432/db";

function usageError(argv: string[], env: Record<string, string | undefined> = {}): UsageError {
  try {
    parseFastImportArgs(argv, env);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
    return error;
  }
  assert.fail(`accepted: ${argv.join(" ")}`);
}

Deno.test("Neon's test fixture's pgdata invocation parses, with defaults", () => {
  const args = parseFastImportArgs([
    "--pg-bin-dir=/pg/bin",
    "--pg-lib-dir=/pg/lib",
    "--working-directory=/tmp/w",
    "pgdata",
    "--pg-port=55433",
    `--source-connection-string=${SOURCE}`,
  ], {});
  assert.deepEqual(args, {
    workingDirectory: "/tmp/w",
    pgBinDir: "/pg/bin",
    pgLibDir: "/pg/lib",
    specFile: undefined,
    destinationDir: undefined,
    command: {
      name: "pgdata",
      sourceConnectionString: SOURCE,
      interactive: false,
      pgPort: 55433,
      numCpus: undefined,
      memoryMb: undefined,
    },
  });
  const defaults = parseFastImportArgs([...GLOBAL, "pgdata"], {});
  assert.equal(defaults.command.name === "pgdata" && defaults.command.pgPort, DEFAULT_PG_PORT);
});

Deno.test("dump-restore takes a source and a destination", () => {
  const args = parseFastImportArgs([
    ...GLOBAL,
    "dump-restore",
    "--source-connection-string",
    SOURCE,
    "--destination-connection-string",
    "host=localhost dbname=x",
  ], {});
  assert.deepEqual(args.command, {
    name: "dump-restore",
    sourceConnectionString: SOURCE,
    destinationConnectionString: "host=localhost dbname=x",
  });
});

Deno.test("pgdata's own flags: -i, --num-cpus, --memory-mb", () => {
  const args = parseFastImportArgs(
    [...GLOBAL, "pgdata", "-i", "--num-cpus", "8", "--memory-mb", "4096"],
    {},
  );
  assert.equal(args.command.name, "pgdata");
  if (args.command.name !== "pgdata") return;
  assert.equal(args.command.interactive, true);
  assert.equal(args.command.numCpus, 8);
  assert.equal(args.command.memoryMb, 4096);
});

Deno.test("every flag falls back to its environment variable; the flag wins", () => {
  const env = {
    [ENV_FALLBACKS.workingDirectory]: "/env/w",
    [ENV_FALLBACKS.pgBinDir]: "/env/bin",
    [ENV_FALLBACKS.pgLibDir]: "/env/lib",
    [ENV_FALLBACKS.specFile]: "/env/spec.json",
    [ENV_FALLBACKS.destinationDir]: "/env/dest",
    [ENV_FALLBACKS.numCpus]: "3",
    [ENV_FALLBACKS.memoryMb]: "512",
  };
  const fromEnv = parseFastImportArgs(["pgdata"], env);
  assert.equal(fromEnv.workingDirectory, "/env/w");
  assert.equal(fromEnv.pgBinDir, "/env/bin");
  assert.equal(fromEnv.pgLibDir, "/env/lib");
  assert.equal(fromEnv.specFile, "/env/spec.json");
  assert.equal(fromEnv.destinationDir, "/env/dest");
  assert.equal(fromEnv.command.name === "pgdata" && fromEnv.command.numCpus, 3);
  assert.equal(fromEnv.command.name === "pgdata" && fromEnv.command.memoryMb, 512);

  const flags = parseFastImportArgs([...GLOBAL, "pgdata", "--num-cpus", "5"], env);
  assert.equal(flags.workingDirectory, "/tmp/w");
  assert.equal(flags.pgBinDir, "/pg/bin");
  assert.equal(flags.command.name === "pgdata" && flags.command.numCpus, 5);
});

Deno.test("an empty environment variable counts as unset", () => {
  const error = usageError(["--pg-bin-dir", "/b", "--pg-lib-dir", "/l", "pgdata"], {
    [ENV_FALLBACKS.workingDirectory]: "",
  });
  assert.match(error.message, /--working-directory \(or NEON_IMPORTER_WORKDIR\)/);
  assert.equal(error.exitCode, 2);
});

Deno.test("bad values are usage errors naming the flag or the variable", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[...GLOBAL, "pgdata", "--pg-port", "70000"], {}, /--pg-port.*1 to 65535/],
    [[...GLOBAL, "pgdata", "--num-cpus", "0"], {}, /--num-cpus.*positive integer/],
    [[...GLOBAL, "pgdata", "--memory-mb", "9"], {}, /--memory-mb.*at least 10/],
    [[...GLOBAL, "pgdata"], { NEON_IMPORTER_NUM_CPUS: "many" }, /NEON_IMPORTER_NUM_CPUS.*positive/],
    [[...GLOBAL, "pgdata"], { NEON_IMPORTER_MEMORY_MB: "1" }, /NEON_IMPORTER_MEMORY_MB.*at least/],
    [[...GLOBAL, "pgdata", "--pg-port", "1", "--pg-port", "2"], {}, /only once/],
    [[...GLOBAL, "pgdata", "extra"], {}, /too many arguments|unknown command|excess/],
    [[...GLOBAL, "import"], {}, /unknown command 'import'/],
    [[...GLOBAL], {}, /a subcommand is required/],
    [[...GLOBAL, "dump-restore", "--interactive"], {}, /unknown option '--interactive'/],
  ];
  for (const [argv, env, pattern] of cases) {
    const error = usageError(argv, env);
    assert.equal(error.exitCode, 2, argv.join(" "));
    assert.match(error.message, pattern, argv.join(" "));
  }
});

Deno.test("the program's flags come before the subcommand, as with clap", () => {
  const error = usageError(["pgdata", ...GLOBAL]);
  assert.match(error.message, /unknown option '--working-directory'/);
});

Deno.test("the S3 prefix is refused, by flag or by variable, naming the replacement", () => {
  for (
    const [argv, env] of [
      [[...GLOBAL, "--s3-prefix", "s3://b/k", "pgdata"], {}],
      [[...GLOBAL, "pgdata"], { NEON_IMPORTER_S3_PREFIX: "s3://b/k" }],
    ] as [string[], Record<string, string>][]
  ) {
    const error = usageError(argv, env);
    assert.match(error.message, /not supported here.*--spec-file.*--destination-dir/);
  }
});

Deno.test("--help exits 0 with the text; a leading -- (deno task) is skipped", () => {
  const help = usageError(["--help"]);
  assert.equal(help.exitCode, 0);
  assert.equal(help.message, fastImportHelp());
  assert.match(help.message, /pgdata/);
  assert.match(help.message, /dump-restore/);
  const sub = usageError(["--", "pgdata", "--help"]);
  assert.equal(sub.exitCode, 0);
  assert.match(sub.message, /--memory-mb/);
  const args = parseFastImportArgs(["--", ...GLOBAL, "dump-restore"], {});
  assert.equal(args.command.name, "dump-restore");
});
