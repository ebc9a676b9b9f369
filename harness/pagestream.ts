/**
 * @module
 * The client side of Neon's pagestream v3 protocol, as much as a probe needs
 * (reference neon-04 §A.7; `libs/pageserver_api/src/pagestream_api.rs`): the
 * bytes of an Exists or DbSize request, and the verdict on what came back.
 */

/** `request_lsn` = `u64::MAX`: "the latest version" (pagestream_api.rs). */
export const LATEST_LSN = 0xffff_ffff_ffff_ffffn;

/** A relation as pagestream requests name it. */
export interface RelTag {
  spcnode: number;
  dbnode: number;
  relnode: number;
  forknum: number;
}

/** The header every v3 request starts with (after its tag). */
export interface PagestreamHeader {
  reqid: bigint;
  /** {@linkcode LATEST_LSN} asks for the latest version. */
  requestLsn: bigint;
  notModifiedSince: bigint;
}

/** The requests the probe can send: Exists (tag 0) or DbSize (tag 3). */
export type PagestreamProbeRequest =
  | { kind: "exists"; rel: RelTag }
  | { kind: "db_size"; dbnode: number };

/**
 * The CopyData payload of a pagestream v3 request (pagestream_api.rs): tag u8,
 * reqid u64, request_lsn u64, not_modified_since u64, then the request's
 * fields (Exists: spcnode, dbnode, relnode u32 and forknum u8; DbSize: dbnode
 * u32), all big-endian.
 */
export function encodePagestreamV3Request(
  header: PagestreamHeader,
  request: PagestreamProbeRequest,
): Uint8Array {
  const bodyLength = request.kind === "exists" ? 13 : 4;
  const out = new Uint8Array(25 + bodyLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, request.kind === "exists" ? 0 : 3);
  view.setBigUint64(1, header.reqid);
  view.setBigUint64(9, header.requestLsn);
  view.setBigUint64(17, header.notModifiedSince);
  if (request.kind === "exists") {
    view.setUint32(25, request.rel.spcnode);
    view.setUint32(29, request.rel.dbnode);
    view.setUint32(33, request.rel.relnode);
    view.setUint8(37, request.rel.forknum);
  } else {
    view.setUint32(25, request.dbnode);
  }
  return out;
}

/** What came back after the probe's request. */
export type PagestreamAnswer =
  | { kind: "copy_data"; payload: Uint8Array }
  | { kind: "error_response"; message: string; code: string }
  | { kind: "closed"; detail?: string }
  | { kind: "timeout" };

/** Whether the pageserver serves the tenant, with a line saying why. */
export type ProbeVerdict =
  | { reachable: true; detail: string }
  | { reachable: false; reason: string };

const RESPONSE_NAMES: Record<number, string> = {
  100: "Exists",
  101: "Nblocks",
  102: "GetPage",
  103: "Error",
  104: "DbSize",
  105: "GetSlruSegment",
};

/**
 * Judges the answer to the v3 request `reqid`: a pagestream response (tags
 * 100–105, the Error message included) that echoes `reqid` means the tenant is
 * attached there; an ErrorResponse, a closed connection, a timeout, a short or
 * unknown message, or an answer to another request means it is not.
 */
export function classifyPagestreamAnswer(answer: PagestreamAnswer, reqid: bigint): ProbeVerdict {
  switch (answer.kind) {
    case "error_response":
      return { reachable: false, reason: `ErrorResponse ${answer.code}: ${answer.message}` };
    case "closed":
      return {
        reachable: false,
        reason: `connection closed${answer.detail ? `: ${answer.detail}` : ""}`,
      };
    case "timeout":
      return { reachable: false, reason: "no answer in time" };
    case "copy_data":
      return classifyResponse(answer.payload, reqid);
  }
}

function classifyResponse(payload: Uint8Array, reqid: bigint): ProbeVerdict {
  const name = RESPONSE_NAMES[payload[0]];
  if (name === undefined) {
    return { reachable: false, reason: `unknown pagestream response tag ${payload[0]}` };
  }
  if (payload.length < 25) {
    return { reachable: false, reason: `pagestream ${name} response of ${payload.length} bytes` };
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const echoed = view.getBigUint64(1);
  if (echoed !== reqid) {
    return { reachable: false, reason: `answer to request ${echoed}, expected ${reqid}` };
  }
  if (name !== "Error") return { reachable: true, detail: `pagestream ${name} response` };
  const text = new TextDecoder().decode(payload.subarray(25)).replace(/\0.*$/s, "");
  return { reachable: true, detail: `pagestream Error: ${text}` };
}
