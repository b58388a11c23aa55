import { EntitySchema } from "@mikro-orm/core";

/** A registered runner and the runtime names (before any ':') it can run. */
export class Runner {
  id!: string;
  name!: string;
  runtimes!: string[];
  registeredAt!: Date;
  /** Refreshed by every heartbeat and claim; the lease of its executions runs from here. */
  lastSeenAt!: Date;
  /** Isolation measures the runner could not apply; copied onto each execution it claims. */
  sandboxWarnings!: string[];
}

export const RunnerSchema = new EntitySchema<Runner>({
  class: Runner,
  tableName: "runners",
  properties: {
    id: { type: "string", primary: true },
    name: { type: "string" },
    runtimes: { type: "json" },
    registeredAt: { type: "datetime" },
    lastSeenAt: { type: "datetime" },
    sandboxWarnings: { type: "json" },
  },
});
