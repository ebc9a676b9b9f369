/**
 * @module
 * A strict check of Prometheus text exposition format (version 0.0.4), in
 * the test suite itself so that it needs no tool outside npm: every line is a
 * comment, a `# HELP`/`# TYPE` line or a sample of valid syntax; a family's
 * `# TYPE` comes once and before its samples; no series repeats; histogram
 * buckets rise with `le`, end at `+Inf` and agree with `_count`; counters are
 * named `*_total`. `parse-prometheus-text-format` (npm) reads the same text
 * independently and must see the same families and series.
 *
 * `promtool check metrics` checks more (and lints names); `.ci/run` runs it
 * too when it is installed, see `tests/integration/metrics_test.ts`.
 */

import parse from "parse-prometheus-text-format";

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
/** A float as Go's ParseFloat (Prometheus's parser) reads it: Inf and NaN in any case. */
const VALUE =
  "[+-]?(?:\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?|[iI][nN][fF]|[nN][aA][nN])";
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`,
);
const HELP = new RegExp(`^# HELP (${NAME})(?: (.*))?$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/** The family a sample belongs to, given the declared families. */
function familyOf(sample: string, types: Map<string, string>): string | undefined {
  if (types.has(sample)) return sample;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = sample.endsWith(suffix) ? sample.slice(0, -suffix.length) : undefined;
    if (base && ["histogram", "summary"].includes(types.get(base) ?? "")) return base;
  }
  return undefined;
}

/** Every problem found in `text`; empty when it is valid. */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  const sampled = new Set<string>();
  const series = new Set<string>();
  const buckets = new Map<string, { le: number; count: number }[]>();
  const counts = new Map<string, number>();
  const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
  if (!text.endsWith("\n")) problems.push("the text does not end with a line break");
  for (const [index, line] of lines.entries()) {
    const at = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line.startsWith("# HELP ")) {
      if (!HELP.test(line)) problems.push(`${at}: malformed HELP`);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const match = TYPE.exec(line);
      if (!match) problems.push(`${at}: malformed TYPE`);
      else if (types.has(match[1])) problems.push(`${at}: second TYPE for ${match[1]}`);
      else if (sampled.has(match[1])) problems.push(`${at}: TYPE after samples of ${match[1]}`);
      else types.set(match[1], match[2]);
      continue;
    }
    if (line.startsWith("#") || line === "") continue;
    const match = SAMPLE.exec(line);
    if (!match) {
      problems.push(`${at}: not a valid sample`);
      continue;
    }
    const [, name, labels = "", value] = match;
    const family = familyOf(name, types);
    if (family === undefined) {
      problems.push(`${at}: ${name} has no TYPE before it`);
      continue;
    }
    sampled.add(family);
    const key = `${name}{${labels}}`;
    if (series.has(key)) problems.push(`${at}: series repeated`);
    series.add(key);
    if (types.get(family) === "counter" && !family.endsWith("_total")) {
      problems.push(`${at}: counter ${family} is not named *_total`);
    }
    const pairs = [...labels.matchAll(new RegExp(LABEL, "g"))].map((pair) => pair[0]);
    const others = pairs.filter((pair) => !pair.startsWith('le="')).join(",");
    if (name === `${family}_bucket`) {
      const le = /(?:^|,)le="([^"]*)"/.exec(labels)?.[1];
      if (le === undefined) problems.push(`${at}: bucket without le`);
      else {
        const list = buckets.get(`${family}{${others}}`) ?? [];
        list.push({ le: le === "+Inf" ? Infinity : Number(le), count: Number(value) });
        buckets.set(`${family}{${others}}`, list);
      }
    }
    if (name === `${family}_count`) counts.set(`${family}{${others}}`, Number(value));
  }
  for (const [key, list] of buckets) {
    const rising = list.every((b, i) =>
      i === 0 || (b.le > list[i - 1].le && b.count >= list[i - 1].count)
    );
    if (!rising) problems.push(`${key}: buckets do not rise with le`);
    const last = list[list.length - 1];
    if (last.le !== Infinity) problems.push(`${key}: no +Inf bucket`);
    else if (counts.get(key) !== last.count) {
      problems.push(`${key}: +Inf bucket differs from _count`);
    }
  }
  problems.push(...crossCheck(text, types, series));
  return problems;
}

/** What the npm parser reads must match: the same families, the same number of plain series. */
function crossCheck(text: string, types: Map<string, string>, series: Set<string>): string[] {
  let parsed: { name: string; type: string; metrics: unknown[] }[];
  try {
    parsed = parse(text);
  } catch (error) {
    return [`parse-prometheus-text-format: ${error instanceof Error ? error.message : error}`];
  }
  const problems: string[] = [];
  for (const family of parsed) {
    const declared = types.get(family.name);
    if (declared === undefined) {
      problems.push(`the npm parser saw an undeclared family ${family.name}`);
    } else if (declared.toUpperCase() !== family.type) {
      problems.push(`${family.name}: TYPE ${declared}, the npm parser read ${family.type}`);
    }
    if (declared === "counter" || declared === "gauge") {
      const mine = [...series].filter((key) => key.startsWith(`${family.name}{`)).length;
      if (mine !== family.metrics.length) {
        problems.push(
          `${family.name}: ${mine} series, the npm parser read ${family.metrics.length}`,
        );
      }
    }
  }
  return problems;
}
