import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { registerHealth, registerReflection } from "@rgrid/common";
import { Health, StorageService } from "@rgrid/proto";

/** Everything the storage service answers over RPC: StorageService, health and reflection. */
export function storageRoutes(handlers: ServiceImpl<typeof StorageService>): (router: ConnectRouter) => void {
  return (router) => {
    router.service(StorageService, handlers);
    registerHealth(router, [StorageService.typeName]);
    registerReflection(router, [StorageService, Health]);
  };
}
