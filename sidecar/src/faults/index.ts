/** Loads every fault file; each registers itself. Adding a fault = adding a file and a line here. */
import './latency.js';
import './bandwidth.js';
import './slow-close.js';
import './timeout.js';
import './reset-peer.js';
import './slicer.js';
import './limit-data.js';
import './loss.js';
import './blackhole.js';
import './partition.js';
import './corrupt.js';
import './duplicate.js';
import './reorder.js';
import './pg-error.js';
import './redis-error.js';

export { getFaultType, listFaultTypes, resolveAttributes, FaultError } from './registry.js';
