#!/usr/bin/env bash
# The fresh-machine check: the README's two commands, `npx -y deno@2.9.6 task demo`
# and `npx -y deno@2.9.6 task test`, on a machine that has only Node.js/npm, as root
# and as an ordinary user.
#
# "Only Node.js/npm" is made on this machine with a private mount namespace (so
# nothing outside this script sees it): Debian's PostgreSQL (/usr/lib/postgresql,
# /usr/share/postgresql, the /usr/bin wrappers of postgresql-common, pg_config),
# deno and promtool are hidden. Each run gets a fresh clone of the repository,
# an empty DENO_DIR, an empty npm cache, a fresh HOME and Debian's default PATH,
# so Deno itself and PostgreSQL come from npm.
#
#   bash tests/fresh_machine/run.sh [--users root,dev] [--commands demo,test]
#
# Needs root (to make the namespace and the ordinary user, `ccfresh`), unshare,
# git and npm. Prints one PASS/FAIL line per user and command; exits 1 if any failed.
set -uo pipefail

users=root,dev
commands=demo,test
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --commands) commands=$2; shift 2 ;;
    *) echo "usage: $0 [--users root,dev] [--commands demo,test]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-machine: run as root (it makes a mount namespace and an ordinary user)" >&2
  exit 2
fi
for tool in unshare git npm runuser; do
  command -v "$tool" >/dev/null || { echo "fresh-machine: $tool is missing" >&2; exit 2; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/fresh-machine-XXXXXX)
chmod 755 "$work"
dev_user=ccfresh
failed=0
# A failed run keeps its clones and logs for a look; a passing one leaves nothing.
cleanup() {
  if [ "$failed" -eq 0 ]; then rm -rf "$work"; else echo "fresh-machine: logs kept in $work"; fi
}
trap cleanup EXIT

if [ "${users#*dev}" != "$users" ] && ! id "$dev_user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$dev_user" || exit 1
fi

# What a machine with only Node.js/npm lacks, hidden inside the namespace.
hide_script='
set -e
for dir in /usr/lib/postgresql /usr/share/postgresql /usr/share/postgresql-common; do
  if [ -d "$dir" ]; then mount -t tmpfs -o mode=755 none "$dir"; fi
done
for file in /usr/bin/pg_config "$(readlink -f /usr/bin/deno 2>/dev/null || true)" \
  /usr/bin/promtool; do
  if [ -n "$file" ] && [ -f "$file" ]; then mount --bind /dev/null "$file"; fi
done
'

results=()

# run_as USER COMMAND: one command in a fresh clone, inside the namespace.
run_as() {
  local user=$1 command=$2
  local home="$work/$user-$command"
  mkdir -p "$home"
  git clone -q "$repo" "$home/main" || return 1
  if [ "$user" != root ]; then chown -R "$user": "$home"; fi
  # Debian's default PATHs: root's has the sbin directories (runuser, useradd), a user's does not.
  local path=/usr/local/bin:/usr/bin:/bin
  if [ "$user" = root ]; then path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; fi
  local env=(env -i "HOME=$home" "PATH=$path" "DENO_DIR=$home/deno-dir"
    "npm_config_cache=$home/npm-cache" "NO_COLOR=1" "LANG=C.UTF-8")
  for name in NODE_EXTRA_CA_CERTS SSL_CERT_FILE DENO_CERT HTTPS_PROXY https_proxy HTTP_PROXY \
    http_proxy NO_PROXY no_proxy npm_config_registry; do
    if [ -n "${!name:-}" ]; then env+=("$name=${!name}"); fi
  done
  local as=()
  if [ "$user" != root ]; then as=(runuser -u "$user" --); fi
  local inner
  case "$command" in
    test) inner='npx -y deno@2.9.6 task test' ;;
    # In a process group of its own, so that SIGINT reaches every process, as Ctrl-C would.
    demo) inner='set -m; npx -y deno@2.9.6 task demo --dir "$HOME/demo" & pid=$!
      for _ in $(seq 1 600); do
        if grep -q "press Ctrl-C to stop" "$HOME/demo.out" 2>/dev/null; then break; fi
        if ! kill -0 $pid 2>/dev/null; then break; fi
        sleep 1
      done
      grep -q "press Ctrl-C to stop" "$HOME/demo.out" || { echo "the demo never became ready"; exit 1; }
      psql_url=$(sed -n "s/.*\"postgres\": \"\(postgresql:[^\"]*\)\".*/\1/p" "$HOME/demo/cluster.json" | head -1)
      echo "demo ready: $psql_url"
      cluster_root=$(sed -n "s/.*\"config_path\": \"\(.*\)\/computes\/.*/\1/p" "$HOME/demo/cluster.json" | head -1)
      [ -n "$cluster_root" ] || { echo "cluster.json names no config_path"; exit 1; }
      # npx itself dies of the SIGINT (130), as it does at a terminal; the demo must stop
      # everything, say "stopped" and remove cluster.json.
      kill -INT -- -$pid; wait $pid
      for _ in $(seq 1 120); do
        if grep -q "^stopped$" "$HOME/demo.out"; then break; fi
        sleep 1
      done
      grep -q "^stopped$" "$HOME/demo.out" || { echo "the demo did not stop"; exit 1; }
      if [ -e "$HOME/demo/cluster.json" ]; then echo "cluster.json is left behind"; exit 1; fi
      if pgrep -f "$cluster_root" >/dev/null; then echo "a process of $cluster_root is left"; exit 1; fi
      echo "the demo stopped everything"' ;;
  esac
  echo "=== $user: $command ($home) ==="
  local script="cd '$home/main'
    for tool in deno psql pg_config promtool; do
      if \$tool --version >/dev/null 2>&1; then echo \"\$tool runs: the machine is not fresh\"; exit 1; fi
    done
    $inner"
  unshare -m --propagation private bash -c "$hide_script
    cd '$home/main' && exec ${as[*]} ${env[*]@Q} bash -c $(printf %q "$script")" \
    > >(tee "$home/$command.log" | { if [ "$command" = demo ]; then tee "$home/demo.out"; else cat; fi; }) 2>&1
}

for user in ${users//,/ }; do
  [ "$user" = dev ] && user=$dev_user
  for command in ${commands//,/ }; do
    started=$SECONDS
    if run_as "$user" "$command"; then verdict=PASS; else verdict=FAIL; failed=$((failed + 1)); fi
    results+=("$verdict  $user: npx -y deno@2.9.6 task $command ($((SECONDS - started)) s)")
  done
done

echo "=== fresh machine ==="
printf '%s\n' "${results[@]}"
[ "$failed" -eq 0 ]
