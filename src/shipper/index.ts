export { Shipper, type ShipperOptions, type ShipperEvents, type ShipperFileWork } from './shipper';
