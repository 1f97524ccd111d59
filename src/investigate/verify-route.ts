import type { KeyObject } from 'node:crypto';
import type { Express, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { AuditStoreError, StoreConfigError, verifyTrail, type AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { keyId, trustedKeys } from '../seal';

const VALID = {
  from: 'an ISO 8601 date-time with a zone, e.g. 2026-11-21T09:00:00Z: periods starting at or after it (default: the first)',
  to: 'an ISO 8601 date-time with a zone, later than from: periods starting before it (default: the last)',
};

const rangeSchema = z
  .object({
    from: z.iso.datetime({ offset: true, message: `must be ${VALID.from}` }).optional(),
    to: z.iso.datetime({ offset: true, message: `must be ${VALID.to}` }).optional(),
  })
  .strict();

/**
 * GET /audit/verify?from&to: recomputes the trail over the periods that start in
 * [from, to) against the seals and the public key, and names the first break. 200 either
 * way (the answer is the finding); 400 for a bad range, 503 when the store does not answer.
 * Leaves the rows checked and the range in res.locals for the access log.
 */
export function verifyRoute(store: AuditStore, publicKey: KeyObject, log: Logger, otherKeys: readonly KeyObject[] = []) {
  const ownId = keyId(publicKey);
  const others = new Map([...trustedKeys(publicKey, otherKeys)].filter(([id]) => id !== ownId));
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = rangeSchema.safeParse(req.query);
    let problem: { filter: string; message: string } | null = null;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const name = issue.path.length ? String(issue.path[0]) : ((issue as { keys?: string[] }).keys?.join(', ') ?? 'query');
      problem = { filter: name, message: issue.path.length ? issue.message : `unknown parameter (verify takes from and to)` };
    } else if (parsed.data.from !== undefined && parsed.data.to !== undefined && Date.parse(parsed.data.to) <= Date.parse(parsed.data.from)) {
      problem = { filter: 'to', message: 'must be later than from' };
    }
    if (problem !== null || !parsed.success) {
      res.status(400).json({ error: 'invalid filter', ...problem, valid: VALID });
      return;
    }
    const { from, to } = parsed.data;
    res.locals.accessQuery = { from: from ?? null, to: to ?? null };
    try {
      const r = await verifyTrail(
        store,
        { fromMs: from !== undefined ? Date.parse(from) : undefined, toMs: to !== undefined ? Date.parse(to) : undefined },
        publicKey,
        others,
      );
      res.locals.accessRows = r.recordsChecked;
      const b = r.firstBreak;
      res.json({
        status: r.status,
        periods_checked: r.periodsChecked,
        records_checked: r.recordsChecked,
        records_unsealed: r.recordsUnsealed,
        records_in_flight: r.recordsInFlight,
        chains: r.chains.map((c) => ({
          chain: c.chain,
          instance: c.instance,
          status: c.status,
          periods_checked: c.periodsChecked,
          records_checked: c.recordsChecked,
          records_unsealed: c.recordsUnsealed,
        })),
        first_break:
          b === null
            ? null
            : {
                chain: b.chain,
                period: new Date(b.periodMs).toISOString(),
                kind: b.kind,
                ...(b.eventId !== undefined ? { event_id: b.eventId } : {}),
                ...(b.seq !== undefined ? { seq: b.seq } : {}),
                ...(b.reason !== undefined ? { reason: b.reason } : {}),
                ...(b.keyId !== undefined ? { key_id: b.keyId } : {}),
              },
        from: from ?? null,
        to: to ?? null,
        key_id: r.keyId,
      });
      if (b !== null) log.warn({ chain: b.chain, period: new Date(b.periodMs).toISOString(), kind: b.kind }, 'audit verify: the trail is broken');
    } catch (err) {
      if (err instanceof StoreConfigError) {
        log.error({ code: err.code }, err.message);
        res.status(500).json({ error: 'verify unavailable', message: err.message });
        return;
      }
      const e = err instanceof AuditStoreError ? err : { code: undefined, message: String(err) };
      // A ClickHouse error (numeric code) may quote the query; only its code is logged.
      if (/^\d{1,5}$/.test(e.code ?? '')) log.error({ code: e.code }, 'audit verify failed: the audit store refused a query');
      else log.error({ code: e.code }, `audit verify failed, the store did not answer: ${e.message}`);
      res.status(503).json({ error: 'audit store unavailable', message: 'the audit store did not answer; try again shortly' });
    }
  };
}

/**
 * GET /audit/public-key: the key that signs the seals, for auditors to check seals (and
 * archived chain heads) away from the gateway. JSON {key_id, algorithm, pem}; the PEM
 * alone for `Accept: application/x-pem-file` or `?format=pem`.
 */
export function publicKeyRoute(publicKey: KeyObject) {
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const body = { key_id: keyId(publicKey), algorithm: 'Ed25519', pem };
  return (req: Request, res: Response): void => {
    const keys = Object.keys(req.query);
    const format = req.query.format;
    if (keys.some((k) => k !== 'format') || (format !== undefined && format !== 'pem' && format !== 'json')) {
      res.status(400).json({
        error: 'invalid filter',
        filter: keys.find((k) => k !== 'format') ?? 'format',
        message: 'public-key takes only format (pem or json)',
        valid: { format: 'pem (the PEM alone) or json (default)' },
      });
      return;
    }
    const wantsPem = format === 'pem' || (format === undefined && req.accepts(['application/json', 'application/x-pem-file']) === 'application/x-pem-file');
    res.vary('Accept');
    if (wantsPem) res.type('application/x-pem-file').send(pem);
    else res.json(body);
  };
}

/** Mounts both routes behind the same guards as the rest of /audit. */
export function mountVerifyRoutes(
  app: Express,
  guards: RequestHandler[],
  store: AuditStore,
  publicKey: KeyObject,
  log: Logger,
  otherKeys: readonly KeyObject[] = [],
): void {
  app.get('/audit/verify', ...guards, verifyRoute(store, publicKey, log, otherKeys));
  app.get('/audit/public-key', ...guards, publicKeyRoute(publicKey));
}
