/**
 * @module
 * The wrappers a spec travels in: the `--config` file and control-plane answer
 * (`ComputeConfig`), the control plane's spec response, and the `/configure`
 * request body. `compute_ctl_config` carries the JWKS for HTTP auth and optional
 * TLS paths; it is read once at start-up.
 */

import { z } from "zod";
import { computeSpecSchema, tlsConfigSchema } from "./spec.ts";

/** One JSON Web Key; the auth layer interprets it, the contract only requires an object. */
export const jwkSchema = z.looseObject({ kty: z.string() });

/** compute_ctl's own configuration: the JWK set (required) and optional TLS paths. */
export const computeCtlConfigSchema = z.object({
  jwks: z.object({ keys: z.array(jwkSchema) }),
  tls: tlsConfigSchema.nullish(),
});
export type ComputeCtlConfig = z.infer<typeof computeCtlConfigSchema>;

/** The `--config` file, and what a control-plane answer becomes: no spec means "empty". */
export const computeConfigSchema = z.object({
  spec: computeSpecSchema.nullish(),
  compute_ctl_config: computeCtlConfigSchema,
});
export type ComputeConfig = z.infer<typeof computeConfigSchema>;

/** Body of `GET {control_plane}/compute/api/v2/computes/{id}/spec`. */
export const controlPlaneSpecResponseSchema = z.object({
  spec: computeSpecSchema.nullish(),
  status: z.enum(["empty", "attached"]),
  compute_ctl_config: computeCtlConfigSchema,
});
export type ControlPlaneSpecResponse = z.infer<typeof controlPlaneSpecResponseSchema>;

/** Body of `POST /configure`: both keys are required; `compute_ctl_config` is ignored. */
export const configurationRequestSchema = z.object({
  spec: computeSpecSchema,
  compute_ctl_config: computeCtlConfigSchema,
});
export type ConfigurationRequest = z.infer<typeof configurationRequestSchema>;
