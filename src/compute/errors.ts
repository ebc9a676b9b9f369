/**
 * @module
 * The errors of the node's operations that the HTTP layer turns into
 * responses (`http/errors.ts`), beside `InvalidStatusError` in `state.ts`.
 */

/** `/refresh_configuration` in a status that does not allow it (HTTP 500). */
export class RefreshNotAllowedError extends Error {
  override name = "RefreshNotAllowedError";
}

/** `/configure` ended in `failed`; `detail` is the recorded error (HTTP 500). */
export class ConfigurationFailedError extends Error {
  override name = "ConfigurationFailedError";
  constructor(readonly detail: string) {
    super(`compute configuration failed: ${JSON.stringify(detail)}`);
  }
}
