import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { registerHealth } from "@rgrid/common";
import { StorageService } from "@rgrid/proto";

/** Everything the storage service answers over RPC: StorageService and the health check. */
export function storageRoutes(handlers: ServiceImpl<typeof StorageService>): (router: ConnectRouter) => void {
  return (router) => {
    router.service(StorageService, handlers);
    registerHealth(router, [StorageService.typeName]);
  };
}
