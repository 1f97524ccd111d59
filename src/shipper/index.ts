export { Shipper, type ShipperOptions, type ShipperEvents } from './shipper';
