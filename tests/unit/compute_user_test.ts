/**
 * @module
 * The compute user and commands run as it, whoever runs the tests: this
 * process's own user when it is not root, an unprivileged one when it is; a
 * program started through {@linkcode computeUserCommand} runs as that user
 * with the environment it was given, {@linkcode programPid} finds it (behind
 * `runuser` or not), and its exit by signal comes back as 128+n either way.
 */

import assert from "node:assert/strict";
import {
  computeUser,
  computeUserCommand,
  isRoot,
  parsePasswd,
  programPid,
} from "../../harness/_processes.ts";

Deno.test("parsePasswd reads name, uid and gid, skipping what is not an entry", () => {
  const text = [
    "root:x:0:0:root:/root:/bin/bash",
    "",
    "# a comment",
    "broken:x:not-a-number:1::/:/bin/false",
    "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash",
  ].join("\n");
  assert.deepEqual(parsePasswd(text), [
    { name: "root", uid: 0, gid: 0 },
    { name: "postgres", uid: 101, gid: 104 },
  ]);
});

Deno.test("the compute user is this user, unless this process is root", () => {
  const user = computeUser();
  if (isRoot()) {
    assert.notEqual(user.uid, 0, "never root");
    const entries = parsePasswd(Deno.readTextFileSync("/etc/passwd"));
    assert.deepEqual(entries.find((entry) => entry.name === "postgres"), user);
  } else {
    assert.equal(user.uid, Deno.uid());
    assert.equal(user.gid, Deno.gid());
  }
  assert.equal(computeUser(), user, "decided once");
});

Deno.test("a command runs as the compute user with exactly the environment given", async () => {
  Deno.env.set("COMPUTE_USER_TEST_ONLY_HERE", "1");
  try {
    const output = await computeUserCommand(
      "sh",
      ["-c", 'echo "$(id -u) $(id -g) ${GIVEN-unset} ${COMPUTE_USER_TEST_ONLY_HERE-unset}"'],
      {
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin", GIVEN: "given" },
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const { uid, gid } = computeUser();
    assert.equal(new TextDecoder().decode(output.stdout).trim(), `${uid} ${gid} given unset`);
  } finally {
    Deno.env.delete("COMPUTE_USER_TEST_ONLY_HERE");
  }
});

Deno.test("programPid finds the program, and its death by signal is 128+n", async () => {
  // The program says when it runs, so its pid is asked for once, after that line.
  const child = computeUserCommand("sh", ["-c", "echo started; exec sleep 37"], {
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  })
    .spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    assert.equal(value?.trim(), "started");
    const pid = await programPid(child);
    assert.ok(pid !== undefined, "the program's pid");
    assert.equal(pid === child.pid, !isRoot(), "behind runuser exactly when root");
    const ps = await new Deno.Command("ps", { args: ["-o", "ppid=", "-p", String(pid)] })
      .output();
    const parent = Number(new TextDecoder().decode(ps.stdout).trim());
    assert.equal(parent === child.pid, isRoot(), "runuser's child when root");
    Deno.kill(pid, "SIGTERM");
    assert.equal((await child.status).code, 128 + 15);
    await reader.cancel();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});
