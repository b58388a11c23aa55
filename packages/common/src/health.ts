import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@rgrid/proto";
import { quoteInput } from "./errors";

/**
 * The standard grpc.health.v1 check. The empty service name asks about the server as a whole;
 * a known service name about that service; an unknown one is NotFound, as the protocol says.
 */
export function registerHealth(
  router: ConnectRouter,
  serviceNames: readonly string[],
  isServing: () => boolean = () => true,
): void {
  router.service(Health, {
    check(request) {
      if (request.service !== "" && !serviceNames.includes(request.service)) {
        throw new ConnectError(`unknown service ${quoteInput(request.service)}`, Code.NotFound);
      }
      return {
        status: isServing()
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.NOT_SERVING,
      };
    },
  });
}
