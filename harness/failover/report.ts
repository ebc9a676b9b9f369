/**
 * @module
 * The failover report: one row per step (what happened, how long until commits
 * flowed again, what was acknowledged so far, whether nothing was lost), as a
 * plain-text table for a terminal or a CI log; a problem of several lines (a
 * compute's log, say) has its first line in the table and the rest below it.
 */

import type { StepReport } from "./runner.ts";

/** The report as aligned text, ending with a verdict line. */
export function renderReport(reports: readonly StepReport[], final: FinalCheck | null): string {
  const header = ["#", "step", "what happened", "recovery", "rows", "transfers", "verified"];
  const rows = reports.map((report) => [
    String(report.index),
    report.step,
    report.problem ? `${report.outcome}: ${report.problem.split("\n")[0]}` : report.outcome,
    report.recoveryMs === null ? "—" : `${report.recoveryMs} ms`,
    String(report.rowsAcknowledged),
    String(report.transfersAcknowledged),
    report.outcome === "failed"
      ? "failed"
      : report.verified === null
      ? "—"
      : report.verified
      ? "ok"
      : "LOST",
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd();
  const text = [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];
  for (const report of reports) {
    if (report.problem?.includes("\n")) text.push("", `step ${report.index}: ${report.problem}`);
  }
  if (final) {
    text.push(
      "",
      `final check on a fresh compute: ${final.rows} acknowledged rows, ` +
        `${final.missing} missing; bank total ${final.bankSum} of ${final.bankTotal}`,
    );
  }
  text.push(verdict(reports, final) ? "PASS: nothing acknowledged was lost" : "FAIL");
  return text.join("\n");
}

/** The last check: a new compute started from the storage alone. */
export interface FinalCheck {
  rows: number;
  missing: number;
  bankSum: number;
  bankTotal: number;
}

/** True when every step ran and verified, and the final check found everything. */
export function verdict(reports: readonly StepReport[], final: FinalCheck | null): boolean {
  return final !== null && final.missing === 0 && final.bankSum === final.bankTotal &&
    reports.every((report) => report.verified !== false && report.outcome !== "failed");
}
