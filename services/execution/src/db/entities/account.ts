import { EntitySchema } from "@mikro-orm/core";

/** Who owns executions; API keys act on behalf of one account. */
export class Account {
  id!: string;
  name!: string;
  createdAt!: Date;
}

export const AccountSchema = new EntitySchema<Account>({
  class: Account,
  tableName: "accounts",
  properties: {
    id: { type: "string", primary: true },
    name: { type: "string", unique: true },
    createdAt: { type: "datetime" },
  },
});
