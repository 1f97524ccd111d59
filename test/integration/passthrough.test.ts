import { passthroughSuite } from '../helpers/passthrough-suite';
import { plainTransport } from '../helpers/transport';

passthroughSuite(plainTransport);
