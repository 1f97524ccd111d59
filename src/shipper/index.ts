export { Shipper, type ShipperOptions, type ShipperEvents, type ShipperFileWork, type ShipperStore } from './shipper';
