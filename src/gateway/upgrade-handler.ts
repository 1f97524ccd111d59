import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeJwtClaims } from '../audit';
import { refuse } from '../errors';
import type { TransactionDone } from '../proxy';
import { readRequestHead, checkSspHeaders } from '../validate';
import { responseInProgress } from './connection-state';
import { openTransaction } from './proxy-handler';
import { rawRefusalResponse } from './refusal-writer';
import { refuseOnSocket, UPGRADE_LINGER_MS } from './socket-refusal';

/**
 * Node's 'upgrade' (Upgrade with `Connection: upgrade`) and 'connect' (CONNECT) events:
 * such a request never becomes a 'request', and without a listener the consumer waits for
 * a reply that never comes. GP Connect has no upgrades and the gateway is no tunnel: the
 * request is refused on the socket (400 UPGRADE_NOT_SUPPORTED, 405 for CONNECT), recorded
 * once with who asked, and the connection closed. Nothing reaches a provider.
 */
export function createUpgradeRefuser(
  ownHeaders: readonly string[],
  allowedMethods: readonly string[],
  decodeClaims: boolean,
  record: TransactionDone,
): (req: IncomingMessage, socket: Duplex) => void {
  const allow = allowedMethods.join(', ');
  return function refuseUpgrade(req: IncomingMessage, socket: Duplex): void {
    const head = readRequestHead(req.rawHeaders);
    checkSspHeaders(head); // only well-formed Ssp-* values reach the record
    const tx = openTransaction(req, head);
    if (decodeClaims) tx.claims = decodeJwtClaims(head.authorization);
    const refusal = req.method === 'CONNECT' ? refuse.methodNotAllowed(allowedMethods) : refuse.upgradeNotSupported();
    socket.on('error', () => {});
    if (responseInProgress(socket as Socket) !== null || !socket.writable) {
      // Pipelined behind a response still being written: nothing may be written into it,
      // and Node has already detached its parser and listeners, so the connection is broken.
      socket.destroy();
      refuseOnSocket(socket, tx, refusal, null, UPGRADE_LINGER_MS, record);
      return;
    }
    // Whatever the consumer still sends (a WebSocket frame, a tunnel's bytes) is read and
    // dropped until it closes (Node has detached its parser: nothing else reads it); a
    // consumer that never does is cut after UPGRADE_LINGER_MS.
    socket.resume();
    refuseOnSocket(socket, tx, refusal, rawRefusalResponse(refusal, ownHeaders, head.accept, allow), UPGRADE_LINGER_MS, record);
  };
}
