import { STATUS_CODES, type ServerResponse } from 'node:http';
import { chooseFormat, renderOperationOutcome, type Refusal } from '../errors';
import type { RefusalWriter } from '../proxy';

/**
 * Builds the writer for the gateway's own refusals: an OperationOutcome with helmet's
 * headers, `Allow` on a 405, and `Connection: close` when the consumer may still be
 * sending a body the gateway will not read.
 */
export function createRefusalWriter(ownHeaders: readonly string[], allowedMethods: readonly string[]): RefusalWriter {
  const allow = allowedMethods.join(', ');
  return function writeRefusal(res: ServerResponse, refusal: Refusal, accept: string | undefined, closeConnection: boolean): number {
    const { body, contentType } = renderOperationOutcome(refusal, chooseFormat(accept));
    const length = Buffer.byteLength(body);
    const headers = ['Content-Type', contentType, 'Content-Length', String(length), ...ownHeaders];
    if (refusal.code === 'METHOD_NOT_ALLOWED') headers.push('Allow', allow);
    if (refusal.retryAfterSeconds > 0) headers.push('Retry-After', String(refusal.retryAfterSeconds));
    if (closeConnection) headers.push('Connection', 'close');
    res.writeHead(refusal.status, headers);
    res.end(body);
    return length;
  };
}

/**
 * The same OperationOutcome as bytes for a socket, always with `Connection: close`: for
 * requests that never got a ServerResponse (Node's parser rejected them, or an upgrade).
 * `bodyLength` is what the record counts, as for every other refusal.
 */
export function rawRefusalResponse(refusal: Refusal, ownHeaders: readonly string[], accept?: string, allow?: string): { bytes: string; bodyLength: number } {
  const { body, contentType } = renderOperationOutcome(refusal, chooseFormat(accept));
  let head = `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n`;
  const bodyLength = Buffer.byteLength(body);
  head += `Content-Type: ${contentType}\r\nContent-Length: ${bodyLength}\r\nConnection: close\r\n`;
  for (let i = 0; i < ownHeaders.length; i += 2) head += `${ownHeaders[i]}: ${ownHeaders[i + 1]}\r\n`;
  if (allow !== undefined && refusal.code === 'METHOD_NOT_ALLOWED') head += `Allow: ${allow}\r\n`;
  return { bytes: `${head}\r\n${body}`, bodyLength };
}
