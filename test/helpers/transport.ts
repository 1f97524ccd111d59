import type { ClientRequest, IncomingMessage, RequestListener, RequestOptions } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { TestCa } from './pki';
import { rawExchange, send, startProvider, type ClientTls, type Reply, type TestProvider } from './test-kit';

/**
 * How a suite's consumer and provider talk to the gateway: plain HTTP, or mutual TLS on
 * both legs with certificates made for the run. The pass-through suite runs over both.
 */
export interface Transport {
  readonly name: string;
  readonly proto: 'http' | 'https';
  /** Settings the gateway needs for this transport. */
  readonly gatewayEnv: Record<string, string>;
  startProvider(handler: RequestListener, path?: string): Promise<TestProvider>;
  send(url: string, options?: Parameters<typeof send>[1]): Promise<Reply>;
  raw(port: number, bytes: string | Buffer, waitMs?: number): Promise<string>;
  connect(port: number, onConnect: () => void): Socket;
  request(url: string, options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest;
}

export function plainTransport(): Transport {
  return {
    name: 'plain HTTP',
    proto: 'http',
    gatewayEnv: {},
    startProvider: (handler, path) => startProvider(handler, path),
    send,
    raw: rawExchange,
    connect: (port, onConnect) => netConnect(port, '127.0.0.1', onConnect),
    request: (url, options, onResponse) => httpRequest(url, options, onResponse),
  };
}

/** Mutual TLS to the gateway, and TLS to a provider that accepts only the gateway's client certificate. */
export function mutualTlsTransport(): Transport {
  const ca = TestCa.create('Pass-through Spine CA');
  const gatewayServer = ca.issue('localhost', { usage: 'server', dns: ['localhost'] });
  const gatewayClient = ca.issue('msg.gateway.test');
  const providerServer = ca.issue('gp.example.nhs.uk', { usage: 'server', dns: ['gp.example.nhs.uk'] });
  const consumer = ca.issue('pharmacy.example.nhs.uk', { dns: ['pharmacy.example.nhs.uk'] });
  const client: ClientTls = { ca: ca.pem, cert: consumer.certPem, key: consumer.keyPem };
  return {
    name: 'mutual TLS on both legs',
    proto: 'https',
    gatewayEnv: {
      TLS_CERT_FILE: gatewayServer.cert,
      TLS_KEY_FILE: gatewayServer.key,
      TLS_CLIENT_CA_FILE: ca.certFile,
      UPSTREAM_CA_FILE: ca.certFile,
      UPSTREAM_CERT_FILE: gatewayClient.cert,
      UPSTREAM_KEY_FILE: gatewayClient.key,
    },
    startProvider: (handler, path) => startProvider(handler, path, { cert: providerServer.certPem, key: providerServer.keyPem, ca: ca.pem }),
    send: (url, options) => send(url, { ...options, tls: client }),
    raw: (port, bytes, waitMs) => rawExchange(port, bytes, waitMs, client),
    connect: (port, onConnect) => tlsConnect({ host: '127.0.0.1', port, ...client }, onConnect),
    request: (url, options, onResponse) => httpsRequest(url, { ...options, ...client }, onResponse),
  };
}
