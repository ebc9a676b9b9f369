/**
 * @module
 * Where the connection strings come from: Neon's control plane writes an
 * encrypted `spec.json` under the S3 prefix (`source_connstring_ciphertext_base64`,
 * `destination_connstring_ciphertext_base64`, decrypted with KMS); here the
 * spec is a plain JSON file, `{"source_connstring", "destination_connstring"?}`
 * (other fields, such as Neon's `project_id` and `branch_id`, are ignored).
 * Without a spec the flags name them. {@linkcode resolveConnections} applies
 * Neon's rules and messages; it is pure.
 */

import { z } from "zod";
import { formatIssues } from "../api/spec.ts";
import type { DumpRestoreCommand, PgdataCommand } from "./cli.ts";

/** The plain spec file. */
export const importSpecSchema = z.looseObject({
  source_connstring: z.string().min(1),
  destination_connstring: z.string().min(1).optional(),
});

/** A parsed spec file. */
export type ImportSpec = z.output<typeof importSpecSchema>;

/** What to dump from and restore into. */
export interface Connections {
  source: string;
  /** Absent for `pgdata`: the destination is the private Postgres. */
  destination?: string;
}

/** A spec or a combination of flags fast_import cannot run with. */
export class SpecError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SpecError";
  }
}

/**
 * Parses the text of a spec file. An encrypted Neon spec (`encryption_secret`,
 * `…_ciphertext_base64`) is refused with a message saying what to write instead.
 */
export function parseImportSpec(text: string, path: string): ImportSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SpecError(`parse spec ${path} as json: ${(error as Error).message}`);
  }
  if (typeof json === "object" && json !== null && "encryption_secret" in json) {
    throw new SpecError(
      `spec ${path} is encrypted (KMS), which is not supported here: ` +
        `write the connection strings in plain text as source_connstring and destination_connstring`,
    );
  }
  const parsed = importSpecSchema.safeParse(json);
  if (!parsed.success) throw new SpecError(`spec ${path}: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * The connections of `command`, from `spec` or from its flags, never both
 * (Neon: "only one of spec or source_connection_string can be provided").
 * `pgdata` needs a source; `dump-restore` a source and a destination.
 */
export function resolveConnections(
  command: PgdataCommand | DumpRestoreCommand,
  spec: ImportSpec | undefined,
): Connections {
  if (spec === undefined && command.sourceConnectionString === undefined) {
    throw new SpecError(
      command.name === "pgdata"
        ? "spec must be provided for pgdata command"
        : "source connection string must be provided for dump_restore command",
    );
  }
  if (spec !== undefined && command.sourceConnectionString !== undefined) {
    throw new SpecError("only one of spec or source_connection_string can be provided");
  }
  const source = spec?.source_connstring ?? command.sourceConnectionString!;
  if (command.name === "pgdata") return { source };
  if (spec !== undefined) {
    if (command.destinationConnectionString !== undefined) {
      throw new SpecError("only one of spec or destination_connection_string can be provided");
    }
    if (spec.destination_connstring === undefined) {
      throw new SpecError(
        "destination connection string must be provided in spec for dump_restore command",
      );
    }
    return { source, destination: spec.destination_connstring };
  }
  if (command.destinationConnectionString === undefined) {
    throw new SpecError(
      "destination connection string must be provided for dump_restore command",
    );
  }
  return { source, destination: command.destinationConnectionString };
}
