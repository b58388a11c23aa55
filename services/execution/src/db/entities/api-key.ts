import { EntitySchema } from "@mikro-orm/core";

/** An API key; only the SHA-256 of the secret is stored, so a database leak yields no keys. */
export class ApiKey {
  id!: string;
  accountId!: string;
  keyHash!: string;
  createdAt!: Date;
}

export const ApiKeySchema = new EntitySchema<ApiKey>({
  class: ApiKey,
  tableName: "api_keys",
  properties: {
    id: { type: "string", primary: true },
    accountId: { type: "string" },
    keyHash: { type: "string", unique: true },
    createdAt: { type: "datetime" },
  },
});
