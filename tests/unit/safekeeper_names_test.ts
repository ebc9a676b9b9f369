import assert from "node:assert/strict";
import {
  MAX_STANDBY_NAME_BYTES,
  safekeeperStandbyName,
  vanillaQuorumSize,
} from "../../src/api/safekeeper_names.ts";
import { quorumSize } from "../../src/storage/safekeepers.ts";

const byteLength = (text: string) => new TextEncoder().encode(text).length;

Deno.test("safekeeperStandbyName: prefix, lower case, [a-z0-9] kept, the rest _", () => {
  assert.equal(safekeeperStandbyName("127.0.0.1:5454"), "safekeeper_127_0_0_1_5454");
  assert.equal(safekeeperStandbyName("SK-1.Local:6500"), "safekeeper_sk_1_local_6500");
  assert.equal(safekeeperStandbyName("[::1]:5454"), "safekeeper____1__5454");
  assert.equal(safekeeperStandbyName("sk\u00e9:1"), "safekeeper_sk__1", "non-ASCII is one _");
  assert.equal(safekeeperStandbyName("a'b\"c:1"), "safekeeper_a_b_c_1", "no quotes survive");
});

Deno.test("safekeeperStandbyName: a name of exactly 63 bytes is kept whole", () => {
  const entry = `${"h".repeat(47)}:5454`; // 11 + 47 + 5 = 63
  const name = safekeeperStandbyName(entry);
  assert.equal(name, `safekeeper_${"h".repeat(47)}_5454`);
  assert.equal(name.length, MAX_STANDBY_NAME_BYTES);
});

Deno.test("safekeeperStandbyName: a longer name is cut to 54 chars + _ + 8 hex of FNV-1a", () => {
  const entry = `${"h".repeat(48)}:5454`;
  const name = safekeeperStandbyName(entry);
  assert.equal(byteLength(name), 63);
  assert.match(name, /^safekeeper_h{43}_[0-9a-f]{8}$/);
  assert.equal(name.slice(0, 54), `safekeeper_${"h".repeat(43)}`);
  assert.equal(name.slice(55), fnv1aReference(entry), "FNV-1a 32 of the original entry");
  assert.equal(fnv1aReference("a"), "e40c292c", "the reference matches the published vectors");
  assert.equal(fnv1aReference("foobar"), "bf9cf968");
});

Deno.test("safekeeperStandbyName: long names are deterministic, bounded and distinct", () => {
  const a = "safekeeper-0.safekeeper.storage.eu-central-1.aws.neon.build:6500";
  const b = "safekeeper-1.safekeeper.storage.eu-central-1.aws.neon.build:6500";
  assert.equal(safekeeperStandbyName(a), safekeeperStandbyName(a));
  assert.notEqual(safekeeperStandbyName(a), safekeeperStandbyName(b));
  for (const entry of [a, b, `${"x".repeat(500)}:1`, `${"\u00e9".repeat(100)}:1`]) {
    const name = safekeeperStandbyName(entry);
    assert.ok(byteLength(name) <= MAX_STANDBY_NAME_BYTES, name);
    assert.match(name, /^[a-z0-9_]+$/);
  }
  // Same sanitised prefix, different entries: only the hash tells them apart.
  const c = `${"h".repeat(60)}.a:1`;
  const d = `${"h".repeat(60)}-a:1`;
  assert.equal(safekeeperStandbyName(c).slice(0, 54), safekeeperStandbyName(d).slice(0, 54));
  assert.notEqual(safekeeperStandbyName(c), safekeeperStandbyName(d));
});

Deno.test("safekeeperStandbyName depends on the entry alone (reordering renames nothing)", () => {
  const entries = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];
  const names = new Map(entries.map((entry) => [entry, safekeeperStandbyName(entry)]));
  for (const entry of [...entries].reverse()) {
    assert.equal(safekeeperStandbyName(entry), names.get(entry));
  }
});

Deno.test("vanillaQuorumSize is floor(n/2)+1, the same as the fast path's quorumSize", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(vanillaQuorumSize), [1, 2, 2, 3, 3, 4, 4]);
  for (let n = 0; n < 10; n++) assert.equal(quorumSize(n), vanillaQuorumSize(n));
});

/** FNV-1a 32 written out with BigInt, independent of the implementation under test. */
function fnv1aReference(text: string): string {
  let hash = 2166136261n;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * 16777619n) % 2n ** 32n;
  }
  return hash.toString(16).padStart(8, "0");
}
