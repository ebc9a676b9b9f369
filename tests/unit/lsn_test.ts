import assert from "node:assert/strict";
import { addLsn, formatLsn, LsnError, lsnSchema, parseLsn } from "../../src/api/lsn.ts";

Deno.test("parseLsn reads hex halves in any case and trims whitespace", () => {
  assert.equal(parseLsn("0/169AD58"), 0x169ad58n);
  assert.equal(parseLsn(" 1/0 "), 1n << 32n);
  assert.equal(parseLsn("ffffffff/ffffffff"), 0xffff_ffff_ffff_ffffn);
  assert.equal(parseLsn("0/16b3748"), parseLsn("0/16B3748"));
});

Deno.test("parseLsn rejects anything but X/Y with 32-bit halves", () => {
  for (const bad of ["", "0", "0/", "/0", "0/0/0", "g/0", "0/1_0", "100000000/0", "-1/0", "12"]) {
    assert.throws(() => parseLsn(bad), LsnError, bad);
  }
});

Deno.test("formatLsn prints upper-case hex without padding and round-trips", () => {
  assert.equal(formatLsn(0n), "0/0");
  assert.equal(formatLsn(0x169ad58n), "0/169AD58");
  assert.equal(formatLsn((0x2n << 32n) | 0x28f10d8n), "2/28F10D8");
  for (const text of ["0/0", "0/169AD58", "A/BCDEF012", "FFFFFFFF/FFFFFFFF"]) {
    assert.equal(formatLsn(parseLsn(text)), text);
  }
});

Deno.test("LSNs compare and add as numbers", () => {
  assert.ok(parseLsn("0/FFFFFFFF") < parseLsn("1/0"));
  assert.equal(addLsn(parseLsn("0/FFFFFFFF"), 1), parseLsn("1/0"));
  assert.throws(() => addLsn(0xffff_ffff_ffff_ffffn, 1), RangeError);
});

Deno.test("lsnSchema accepts strings only", () => {
  assert.equal(lsnSchema.parse("0/10"), 16n);
  assert.equal(lsnSchema.safeParse(16).success, false);
  assert.equal(lsnSchema.safeParse("zz").success, false);
});
