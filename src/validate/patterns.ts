/** Formats shared by the request validator and the directory schema. */

/** ASIDs are digits (12 in every Spine example). */
export const ASID_PATTERN = /^[0-9]{1,32}$/;

/** Interaction IDs are URNs (RFC 8141 namespace, then printable ASCII without spaces). */
export const INTERACTION_PATTERN = /^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[\x21-\x7e]{1,200}$/;

/** Ssp-TraceID is a GUID, in either case (the SSP's own ids vary in case). */
export const TRACE_ID_PATTERN = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

/** ODS organisation codes. */
export const ODS_PATTERN = /^[A-Za-z0-9]{1,12}$/;
