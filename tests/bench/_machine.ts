/**
 * @module
 * The machine a benchmark run happened on, for the report: numbers from one
 * machine say little about another, so they always travel together.
 */

/** What the report says about the machine. */
export interface Machine {
  cpuModel: string;
  cpuCount: number;
  memoryMiB: number;
  kernel: string;
  deno: string;
  postgres: string;
}

/** Reads the CPU, memory, kernel, Deno and Postgres versions (`pgbin --version`). */
export async function describeMachine(pgbin: string): Promise<Machine> {
  return {
    cpuModel: await cpuModel(),
    cpuCount: navigator.hardwareConcurrency,
    memoryMiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 20),
    kernel: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    postgres: await postgresVersion(pgbin),
  };
}

/** `model name` of `/proc/cpuinfo`, read through `cat`: Deno reads `/proc` only with `--allow-all`. */
async function cpuModel(): Promise<string> {
  const cpuinfo = await commandOutput("cat", ["/proc/cpuinfo"]);
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? "unknown";
}

async function postgresVersion(pgbin: string): Promise<string> {
  return (await commandOutput(pgbin, ["--version"])).trim() || "unknown";
}

/** What `command` printed on stdout; empty when it could not run. */
async function commandOutput(command: string, args: string[]): Promise<string> {
  try {
    const output = await new Deno.Command(command, { args, stdin: "null", stderr: "null" })
      .output();
    return new TextDecoder().decode(output.stdout);
  } catch {
    return "";
  }
}
