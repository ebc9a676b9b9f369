/**
 * @module
 * Spec fixtures shared by tests of the compute's services: a parsed spec with
 * fixed tenant and timeline ids, and a connection string nothing listens on.
 */

import { parseComputeSpecJson, type ParsedSpec, parseSpec } from "../../src/api/parsed_spec.ts";

/** The tenant of {@link testParsedSpec}. */
export const TEST_TENANT = "b0554b632bd4d547a63b86c3630317e8";
/** The timeline of {@link testParsedSpec}. */
export const TEST_TIMELINE = "2414a61ffc94e428f14b5758fe308e13";

/** Nothing listens here: connecting fails at once (only integration tests may try). */
export const DEAD_CONNSTR = "postgresql://cloud_admin@127.0.0.1:1/postgres";

/** A valid primary spec (endpoint `ep-one`, one safekeeper), with `overrides` on top. */
export function testParsedSpec(overrides: Record<string, unknown> = {}): ParsedSpec {
  return parseSpec(parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [] },
    tenant_id: TEST_TENANT,
    timeline_id: TEST_TIMELINE,
    endpoint_id: "ep-one",
    pageserver_connstring: "postgresql://no_user@127.0.0.1:6400",
    safekeeper_connstrings: ["127.0.0.1:6501"],
    ...overrides,
  }));
}
