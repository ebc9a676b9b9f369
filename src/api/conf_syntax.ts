/**
 * @module
 * What PostgreSQL's configuration-file scanner (`guc-file.l`) accepts, so a
 * spec whose settings or verbatim `postgresql_conf` would make Postgres refuse
 * its `postgresql.conf` (at the next start, or the whole file at a reload) is
 * refused before anything is written. The tokens and their priorities are the
 * scanner's: the longest match wins, ties go to the rule listed first. Pure.
 */

/** The scanner's tokens, in its rule order (which breaks ties between equal lengths). */
type ConfToken = "id" | "qualified_id" | "string" | "unquoted_string" | "integer" | "real";

// A byte ≥ 0x80 is a letter to the scanner; every UTF-16 unit ≥ 0x80 encodes to such bytes.
const LETTER = "A-Za-z_\\u0080-\\uffff";
const LETTER_OR_DIGIT = "A-Za-z_0-9\\u0080-\\uffff";
const ID = `[${LETTER}][${LETTER_OR_DIGIT}]*`;

/** Each token's alternatives; flex takes the longest match of a rule, so each is tried. */
const TOKEN_PATTERNS: ReadonlyArray<readonly [ConfToken, readonly RegExp[]]> = [
  ["id", [new RegExp(ID, "y")]],
  ["qualified_id", [new RegExp(`${ID}\\.${ID}`, "y")]],
  ["string", [/'(?:[^'\\\n]|\\[^\n]|'')*'/y]],
  ["unquoted_string", [new RegExp(`[${LETTER}](?:[${LETTER_OR_DIGIT}]|[-._:/])*`, "y")]],
  ["integer", [/[-+]?\d+[a-zA-Z]*/y, /[-+]?0x[0-9a-fA-F]+[a-zA-Z]*/y]],
  ["real", [/[-+]?\d*\.\d*(?:[Ee][-+]?\d+)?/y]],
];

/** Tokens that may stand as a setting's value. */
const VALUE_TOKENS: ReadonlySet<string> = new Set<ConfToken>([
  "id",
  "string",
  "integer",
  "real",
  "unquoted_string",
]);

/** One scanned token: its kind (`=`, `eol` or `error` besides {@link ConfToken}) and text. */
interface Scanned {
  kind: ConfToken | "=" | "eol" | "error";
  text: string;
}

function longestAt(text: string, at: number): Scanned | undefined {
  let best: Scanned | undefined;
  for (const [kind, patterns] of TOKEN_PATTERNS) {
    for (const pattern of patterns) {
      pattern.lastIndex = at;
      const match = pattern.exec(text);
      if (match && match[0].length > (best?.text.length ?? 0)) best = { kind, text: match[0] };
    }
  }
  return best;
}

/** Splits conf text into tokens as the scanner does, dropping blanks and comments. */
function scan(text: string): Scanned[] {
  const tokens: Scanned[] = [];
  let at = 0;
  while (at < text.length) {
    const char = text[at];
    if (char === "\n") {
      tokens.push({ kind: "eol", text: char });
      at++;
    } else if (char === " " || char === "\t" || char === "\r") {
      at++;
    } else if (char === "#") {
      const end = text.indexOf("\n", at);
      at = end === -1 ? text.length : end;
    } else {
      const token = longestAt(text, at) ??
        { kind: char === "=" ? "=" as const : "error" as const, text: char };
      tokens.push(token);
      at += token.text.length;
    }
  }
  return tokens;
}

/** Names the configuration file reads as directives, never as settings. */
export const CONF_DIRECTIVES: ReadonlySet<string> = new Set([
  "include",
  "include_if_exists",
  "include_dir",
]);

/**
 * Why `text` (a whole `postgresql.conf`, or part of one) would not parse,
 * naming the first bad line (`line 3 is not valid postgresql.conf syntax`), or
 * undefined when every line is blank, a comment, or `name [=] value`. An
 * `include` directive is refused too (`line 3 is an include directive, which
 * a spec may not use`): it would make Postgres read any file its user can.
 */
export function confTextProblem(text: string): string | undefined {
  const tokens = scan(text);
  let line = 1;
  let index = 0;
  while (index < tokens.length) {
    const lineStart = index;
    while (index < tokens.length && tokens[index].kind !== "eol") index++;
    const lineTokens = tokens.slice(lineStart, index);
    if (!isSettingLine(lineTokens)) return `line ${line} is not valid postgresql.conf syntax`;
    if (CONF_DIRECTIVES.has(lineTokens[0]?.text.toLowerCase())) {
      return `line ${line} is an include directive, which a spec may not use`;
    }
    index++;
    line++;
  }
  return undefined;
}

function isSettingLine(tokens: Scanned[]): boolean {
  if (tokens.length === 0) return true;
  const [name, ...rest] = tokens;
  if (name.kind !== "id" && name.kind !== "qualified_id") return false;
  const value = rest[0]?.kind === "=" ? rest.slice(1) : rest;
  return value.length === 1 && VALUE_TOKENS.has(value[0].kind);
}

/**
 * Whether `value` can be written unquoted after `name =` and read back as
 * exactly itself: one value token and nothing else (no blanks, no comment).
 */
export function isBareConfValue(value: string): boolean {
  const tokens = scan(value);
  return tokens.length === 1 && VALUE_TOKENS.has(tokens[0].kind) &&
    tokens[0].text === value;
}
