import { setFlagsFromString } from "node:v8";

/**
 * How far past what was live after the last full collection V8 lets a service's heap grow before
 * collecting again, in percent. Left to itself V8 lets it grow to several times the live heap when
 * allocation is fast, and keeps the room: under the fuzz suites' mix of malformed requests
 * (bench/hostile-memory.ts) execution-service's RSS rose 47–71 MiB over 10,000 requests while its
 * live heap stayed at 30 MiB — garbage, waiting. With 30 % it rose 9 MiB, at about the same
 * throughput.
 */
const HEAP_GROWING_PERCENT = 30;

/**
 * Bounds heap growth as HEAP_GROWING_PERCENT says. For a service's main, before it starts serving:
 * the flag cannot be passed in NODE_OPTIONS, and V8 reads it each time it sets the next limit.
 */
export function boundHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
