import { passthroughSuite } from '../helpers/passthrough-suite';
import { mutualTlsTransport } from '../helpers/transport';

// The whole pass-through suite again, over mutual TLS to the gateway and TLS to the provider.
passthroughSuite(mutualTlsTransport);
