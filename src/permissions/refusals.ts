/**
 * @module
 * Checks requirements against the Deno permissions this process runs under
 * (`Deno.permissions.query`, which never prompts) and words each refusal as
 * one line: the setting, what cannot be done, and both ways to grant it (the
 * `compute` permission set of `deno.json`, or `--allow-…` flags; with `-P`, a
 * flag replaces the set's list, hence `<the set's "…" list>`).
 *
 * Pure apart from the `query` it is given ({@linkcode denoPermissionQuery} in
 * production), so it is unit-tested with a fake one.
 */

import { type Access, type Need, PERMISSION_KEY, type Requirement } from "./requirements.ts";

/** Asks whether one permission is granted; resolves with Deno's answer. */
export type PermissionQuery = (
  descriptor: Deno.PermissionDescriptor,
) => Promise<Deno.PermissionState>;

/** {@linkcode PermissionQuery} backed by `Deno.permissions.query`. */
export const denoPermissionQuery: PermissionQuery = async (descriptor) =>
  (await Deno.permissions.query(descriptor)).state;

/**
 * The refusals among `needs`: one line per requirement with any access not
 * granted, naming the setting and how to grant what is missing. Empty when
 * everything is granted. A descriptor Deno cannot even parse counts as not
 * granted.
 */
export async function refusals(
  requirements: readonly Requirement[],
  query: PermissionQuery = denoPermissionQuery,
): Promise<string[]> {
  const lines: string[] = [];
  for (const requirement of requirements) {
    const missing: Need[] = [];
    for (const need of requirement.needs) {
      if (!(await isGranted(query, descriptor(need)))) missing.push(need);
    }
    if (missing.length > 0) lines.push(refusalMessage(requirement, missing));
  }
  return lines;
}

/** The one-line refusal for `requirement`, whose `missing` needs are not granted. */
function refusalMessage(requirement: Requirement, missing: readonly Need[]): string {
  const grantsByKey = new Map<string, string[]>();
  for (const need of missing) {
    const key = PERMISSION_KEY[need.access];
    const grants = grantsByKey.get(key) ?? [];
    if (!grants.includes(need.grant)) grants.push(need.grant);
    grantsByKey.set(key, grants);
  }
  const keys = [...grantsByKey.keys()];
  const quoted = (list: readonly string[]) =>
    list.map((entry) => JSON.stringify(entry)).join(" and ");
  const lists = [...grantsByKey.values()].map((grants) => grants.join("\n"));
  const add = lists.every((list) => list === lists[0])
    ? `${quoted(grantsByKey.get(keys[0])!)} to ${keys.map((key) => `"${key}"`).join(" and ")}`
    : keys.map((key) => `${quoted(grantsByKey.get(key)!)} to "${key}"`).join(", and ");
  const flags = keys.map((key) =>
    `--allow-${key}=${grantsByKey.get(key)!.join(",")},<the set's "${key}" list>`
  );
  const accesses = missing.map((need) => need.access);
  return `${requirement.subject} ${problem(accesses, requirement.plural ?? false)} under the ` +
    `permissions this process was started with: add ${add} in the "compute" permission set of ` +
    `deno.json, or run with ${flags.join(" ")}`;
}

function problem(missing: readonly Access[], plural: boolean): string {
  if (missing.includes("run")) {
    return missing.includes("read") ? "cannot be run or read" : "cannot be run";
  }
  if (missing.includes("connect")) return "cannot be reached";
  if (missing.includes("listen")) return "cannot be listened on";
  const adjectives = [...new Set(missing)].map((access) =>
    access === "read" ? "readable" : "writable"
  );
  return `${plural ? "are" : "is"} not ${adjectives.join(" or ")}`;
}

async function isGranted(query: PermissionQuery, what: Deno.PermissionDescriptor) {
  try {
    return (await query(what)) === "granted";
  } catch {
    return false;
  }
}

function descriptor({ access, target }: Need): Deno.PermissionDescriptor {
  switch (access) {
    case "read":
    case "write":
      return { name: access, path: target };
    case "run":
      return { name: "run", command: target };
    case "connect":
    case "listen":
      return { name: "net", host: target };
  }
}
