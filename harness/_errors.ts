/**
 * @module
 * Why a cluster operation (stop a pageserver, add a compute, migrate a tenant…)
 * refused: the id names nothing, the move is impossible in the current state,
 * or the request itself is malformed. The admin API answers them 404, 409 and
 * 400; tests can match on the class.
 */

/** The pageserver, safekeeper, compute, tenant or timeline named does not exist. */
export class HarnessNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HarnessNotFoundError";
  }
}

/** The operation is impossible now (e.g. stopping a stopped pageserver). */
export class HarnessConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HarnessConflictError";
  }
}

/** The request is malformed (e.g. a Static LSN that does not parse). */
export class HarnessBadRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HarnessBadRequestError";
  }
}
