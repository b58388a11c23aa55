import { AccountSchema } from "./account";
import { ApiKeySchema } from "./api-key";
import { AuditEntrySchema } from "./audit-entry";
import { ExecutionSchema } from "./execution";
import { LogLineSchema } from "./log-entry";
import { RetryOperationItemSchema, RetryOperationSchema } from "./retry-operation";
import { RunnerSchema } from "./runner";
import { SessionSchema, SignInTokenSchema } from "./session";

export * from "./account";
export * from "./api-key";
export * from "./audit-entry";
export * from "./execution";
export * from "./log-entry";
export * from "./retry-operation";
export * from "./runner";
export * from "./session";

export const ENTITY_SCHEMAS = [AccountSchema, ApiKeySchema, RunnerSchema, ExecutionSchema, LogLineSchema, SessionSchema, SignInTokenSchema, AuditEntrySchema, RetryOperationSchema, RetryOperationItemSchema];
