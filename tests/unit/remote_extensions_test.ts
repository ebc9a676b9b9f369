import assert from "node:assert/strict";
import {
  goArch,
  libraryIndexName,
  RemoteExtensionNotFoundError,
  remoteExtensionPath,
  resolveRemoteExtension,
} from "../../src/api/remote_extensions.ts";
import type { RemoteExtSpec } from "../../src/api/spec.ts";
import { archiveEntryTarget } from "../../src/storage/extension_store.ts";

const remote: RemoteExtSpec = {
  public_extensions: ["postgis", "pg_trgm"],
  custom_extensions: ["anon"],
  library_index: { "postgis-3": "postgis", "anon": "anon", "orphan": "lost", "pg_trgm": "pg_trgm" },
  extension_data: {
    postgis: { control_data: {}, archive_path: "" },
    anon: { control_data: {}, archive_path: "" },
    pg_trgm: { control_data: {}, archive_path: "" },
  },
};

Deno.test("library names lose everything from the first .so", () => {
  assert.equal(libraryIndexName("postgis-3.so"), "postgis-3");
  assert.equal(libraryIndexName("libpgrouting-3.4.so.1.2"), "libpgrouting-3.4");
  assert.equal(libraryIndexName("anon"), "anon");
});

Deno.test("files resolve to extensions through library_index and the allow lists", () => {
  assert.equal(resolveRemoteExtension(remote, "postgis", false), "postgis");
  assert.equal(resolveRemoteExtension(remote, "postgis-3.so", true), "postgis");
  assert.equal(resolveRemoteExtension(remote, "anon.so.1", true), "anon");
  const refused = (filename: string, isLibrary: boolean) => {
    try {
      resolveRemoteExtension(remote, filename, isLibrary);
    } catch (error) {
      assert.ok(error instanceof RemoteExtensionNotFoundError);
      return error.message;
    }
    assert.fail(`${filename} resolved`);
  };
  assert.equal(refused("nothing.so", true), "library nothing is not found");
  assert.equal(refused("orphan.so", true), "extension lost is not found");
  assert.equal(refused("secret", false), "extension secret is not found");
  assert.equal(refused("toString.so", true), "library toString is not found");
  const unlisted: RemoteExtSpec = { ...remote, public_extensions: ["ghost"] };
  assert.equal(
    (() => {
      try {
        resolveRemoteExtension(unlisted, "ghost", false);
      } catch (error) {
        return (error as Error).message;
      }
    })(),
    "real_ext_name ghost is not found",
  );
  const noLists: RemoteExtSpec = { ...remote, public_extensions: null, custom_extensions: null };
  assert.throws(() => resolveRemoteExtension(noLists, "postgis", false), /extension postgis/);
});

Deno.test("archive paths: build tag, Go arch, pg major, extension", () => {
  const target = { buildTag: "5670669815", arch: goArch("x86_64"), pgMajor: "v15" };
  assert.equal(
    remoteExtensionPath(target, "anon"),
    "5670669815/amd64/v15/extensions/anon.tar.zst",
  );
  assert.equal(goArch("aarch64"), "arm64");
  assert.equal(goArch("riscv64"), "riscv64");
  assert.throws(() => remoteExtensionPath({ ...target, buildTag: "" }, "anon"), /absolute/);
});

Deno.test("archive entries go to sharedir/extension and pkglibdir, others nowhere", () => {
  const dirs = { sharedir: "/pg/share", pkglibdir: "/pg/lib" };
  assert.equal(
    archiveEntryTarget("share/extension/a.control", dirs),
    "/pg/share/extension/a.control",
  );
  assert.equal(archiveEntryTarget("./lib/a.so", dirs), "/pg/lib/a.so");
  assert.equal(archiveEntryTarget("lib/bitcode/a/b.bc", dirs), "/pg/lib/bitcode/a/b.bc");
  assert.equal(archiveEntryTarget("share/doc/readme", dirs), null);
  assert.equal(archiveEntryTarget("./", dirs), null);
  assert.throws(() => archiveEntryTarget("lib/../../etc/passwd", dirs), /escapes/);
});
