/**
 * @module
 * Reading samples out of Prometheus text, for tests of `/metrics`.
 */

/**
 * The value of the sample `name{labels}` in Prometheus text (labels must all
 * match; others may be present), or undefined when there is none.
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = new Map<string, string>();
    for (const label of (match[3] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      present.set(label[1], label[2]);
    }
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) {
      return Number(match[4]);
    }
  }
  return undefined;
}
