/**
 * @module
 * The compute's services, owned by the node: the LFC jobs, the promotion and
 * the extension server, which the HTTP routes use on demand, and the TLS
 * certificate watcher, which the start-up starts. The node builds them, and
 * its `run()` stops them and waits for their work before the compute ends.
 */

import { createExtensionServer, type ExtensionServer } from "./extension_server.ts";
import { createLfc, type Lfc } from "./lfc.ts";
import { createPromoter, type PromotableCompute, type Promoter } from "./promote.ts";
import type { NodeSettings } from "./settings.ts";
import type { ComputeState } from "./state.ts";
import { createTlsCertWatcher, type TlsCertWatcherService } from "./tls_watcher.ts";

/** The services of one compute. */
export interface ComputeServices {
  /** `/lfc/prewarm`, `/lfc/offload`. */
  readonly lfc: Lfc;
  /** `/promote`. */
  readonly promoter: Promoter;
  /** `/extension_server/…`. */
  readonly extensionServer: ExtensionServer;
  /** Requests a reconfiguration when the TLS certificate changes. */
  readonly tlsCertWatcher: TlsCertWatcherService;
}

/** What the services need from the compute. */
export interface ServiceOwner extends PromotableCompute {
  readonly state: ComputeState;
  readonly settings: Pick<
    NodeSettings,
    "connstr" | "pgbin" | "remoteExtBaseUrl" | "tlsCertCheckIntervalMs"
  >;
}

/** The services of `compute`; nothing starts until a route (or the start-up) asks. */
export function createComputeServices(compute: ServiceOwner): ComputeServices {
  const lfc = createLfc(compute);
  return {
    lfc,
    promoter: createPromoter(compute, lfc),
    extensionServer: createExtensionServer(compute),
    tlsCertWatcher: createTlsCertWatcher(compute),
  };
}

/**
 * Stops every service (a running prewarm is cancelled; from now on each
 * refuses new work) and resolves when the work they had started has ended.
 */
export async function stopComputeServices(services: ComputeServices): Promise<void> {
  await Promise.all([
    services.lfc.stop(),
    services.promoter.stop(),
    services.extensionServer.stop(),
    services.tlsCertWatcher.stop(),
  ]);
}
