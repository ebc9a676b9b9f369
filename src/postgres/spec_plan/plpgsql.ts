/**
 * @module
 * The PL/pgSQL `DO` blocks the planner sends: each a pure function of the
 * names it mentions, with a dollar-quote tag that no name can close.
 */

import { dollarQuote, quoteLiteral } from "../sql_quote.ts";

/** Roles that pre-date a public-schema owner change and hand it to the database owner. */
export const ADMIN_SCHEMA_OWNERS = ["cloud_admin", "zenith_admin"];

/** Wraps `sql` so it runs only when schema `public` exists (for databases not inspected). */
export function ifPublicSchemaExists(sql: string): string {
  const tag = `$${dollarQuote(sql).outerTag}$`;
  return `DO ${tag} BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace ` +
    `WHERE nspname = 'public') THEN ${sql}; END IF; END ${tag}`;
}

/**
 * A `DO` block that makes `owner` the owner of schema `public` when one of
 * {@link ADMIN_SCHEMA_OWNERS} still owns it (for databases not inspected).
 */
export function publicSchemaFromAdminSql(owner: string): string {
  const quoted = dollarQuote(owner);
  const tag = `$${quoted.outerTag}$`;
  return `DO ${tag} BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace ` +
    `WHERE nspname = 'public' AND pg_catalog.pg_get_userbyid(nspowner) IN ` +
    `(${ADMIN_SCHEMA_OWNERS.map(quoteLiteral).join(", ")})) THEN ` +
    `EXECUTE pg_catalog.format('ALTER SCHEMA public OWNER TO %I', ${quoted.quoted}); ` +
    `END IF; END ${tag}`;
}

/**
 * A `DO` block, run in database `dbname`, that disables, detaches from its slot
 * (the publisher's slot is left alone) and drops every subscription of that
 * database, holding a lock on `pg_subscription` meanwhile.
 */
export function dropSubscriptionsSql(dbname: string): string {
  const db = dollarQuote(dbname);
  const tag = `$${db.outerTag}$`;
  return [
    `DO ${tag}`,
    "DECLARE",
    "  subscriptions name[];",
    "  subscription name;",
    "BEGIN",
    "  LOCK TABLE pg_catalog.pg_subscription IN ACCESS EXCLUSIVE MODE;",
    "  SELECT pg_catalog.array_agg(s.subname) INTO subscriptions",
    "    FROM pg_catalog.pg_subscription s",
    "    JOIN pg_catalog.pg_database d ON d.oid = s.subdbid",
    `   WHERE d.datname = ${db.quoted};`,
    "  FOREACH subscription IN ARRAY COALESCE(subscriptions, '{}') LOOP",
    "    EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I DISABLE', subscription);",
    "    EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', subscription);",
    "    EXECUTE pg_catalog.format('DROP SUBSCRIPTION %I', subscription);",
    "  END LOOP;",
    `END ${tag}`,
  ].join("\n");
}

/**
 * A `DO` block that revokes the table privileges in schema `public` granted to
 * `role`, once per grantor and as that grantor (`REVOKE … GRANTED BY` must be
 * run by the grantor), so grants made by the privileged role or by other roles
 * do not keep the role from being dropped.
 */
export function revokePublicTableGrantsSql(role: string): string {
  const target = dollarQuote(role);
  const tag = `$${target.outerTag}$`;
  return [
    `DO ${tag}`,
    "DECLARE",
    `  target name := ${target.quoted};`,
    "  grantors name[];",
    "  grantor name;",
    "BEGIN",
    "  SELECT pg_catalog.array_agg(DISTINCT g.rolname) INTO grantors",
    "    FROM pg_catalog.pg_class c",
    "    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
    "    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a",
    "    JOIN pg_catalog.pg_roles g ON g.oid = a.grantor",
    "    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee",
    "   WHERE n.nspname = 'public' AND r.rolname = target;",
    "  FOREACH grantor IN ARRAY COALESCE(grantors, '{}') LOOP",
    "    EXECUTE pg_catalog.format('SET LOCAL ROLE %I', grantor);",
    "    EXECUTE pg_catalog.format(",
    "      'REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM %I GRANTED BY %I',",
    "      target, grantor);",
    "  END LOOP;",
    "  RESET ROLE;",
    `END ${tag}`,
  ].join("\n");
}
