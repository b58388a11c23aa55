import { AccountSchema } from "./account";
import { ApiKeySchema } from "./api-key";
import { ExecutionSchema } from "./execution";
import { LogLineSchema } from "./log-entry";
import { RunnerSchema } from "./runner";

export * from "./account";
export * from "./api-key";
export * from "./execution";
export * from "./log-entry";
export * from "./runner";

export const ENTITY_SCHEMAS = [AccountSchema, ApiKeySchema, RunnerSchema, ExecutionSchema, LogLineSchema];
