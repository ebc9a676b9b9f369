/**
 * @module
 * The Debian base image the test builds on. No image registry is reachable
 * from our CI machines, so `localhost/debian-bookworm-minbase` is made here
 * with `debootstrap --variant=minbase` from the mirror the host's apt uses,
 * and imported into podman; `main.ts` makes it only when podman lacks it.
 */

import { join } from "node:path";
import { podmanCommand } from "./_podman.ts";

/** The name the Containerfile's `BASE_IMAGE` gets here. */
export const BASE_IMAGE = "localhost/debian-bookworm-minbase";

const SUITE = "bookworm";
const DEFAULT_MIRROR = "http://deb.debian.org/debian";
const APT_SOURCES = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];

/**
 * The Debian mirror in `sources` (deb822 `URIs:` or one-line `deb URL`
 * entries), skipping the security archive; undefined when none is named.
 */
export function debianMirror(sources: string): string | undefined {
  const urls = [
    ...sources.matchAll(/^URIs:\s*(\S+)/gm),
    ...sources.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm),
  ].map((match) => match[1]);
  return urls.find((url) => !url.includes("security"));
}

function hostMirror(): string {
  for (const path of APT_SOURCES) {
    try {
      const mirror = debianMirror(Deno.readTextFileSync(path));
      if (mirror) return mirror;
    } catch {
      // no such file
    }
  }
  return DEFAULT_MIRROR;
}

async function run(command: Deno.Command, what: string): Promise<void> {
  const output = await command.output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-10);
    throw new Error(`${what} exited with code ${output.code}:\n${stderr.join("\n")}`);
  }
}

/**
 * Makes {@linkcode BASE_IMAGE}. The debootstrap tree lives in a temporary
 * directory removed at the end, and loses its package downloads and apt lists
 * before the import (the Containerfile runs `apt-get update` itself).
 */
export async function makeBaseImage(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "compute-ctl-minbase-" });
  try {
    await run(
      new Deno.Command("debootstrap", {
        args: ["--variant=minbase", SUITE, root, hostMirror()],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }),
      "debootstrap",
    );
    for (const dir of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      for await (const entry of Deno.readDir(join(root, dir))) {
        if (entry.isFile) await Deno.remove(join(root, dir, entry.name));
      }
    }
    const tar = new Deno.Command("tar", {
      args: ["-C", root, "-c", "."],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const importer = podmanCommand(["import", "-", BASE_IMAGE], {
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // A failing import breaks the pipe; the exit codes below say which side failed.
    const piped = tar.stdout.pipeTo(importer.stdin).catch(() => {});
    const ends = await Promise.all([tar, importer].map(async (child) => ({
      stderr: await new Response(child.stderr).text(),
      status: await child.status,
    })));
    await piped;
    for (const [index, what] of ["tar", "podman import"].entries()) {
      const { stderr, status } = ends[index];
      if (!status.success) throw new Error(`${what} exited with code ${status.code}: ${stderr}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
