import type { MigrationObject } from "@mikro-orm/core";
import { Migration20250601000000_initial } from "./Migration20250601000000_initial";
import { Migration20261127000000_runners_for_real } from "./Migration20261127000000_runners_for_real";
import { Migration20261130000000_console } from "./Migration20261130000000_console";
import { Migration20261130120000_audit } from "./Migration20261130120000_audit";
import { Migration20261130140000_overrides } from "./Migration20261130140000_overrides";
import { Migration20261130160000_retry_operations } from "./Migration20261130160000_retry_operations";
import { Migration20261130180000_log_archive } from "./Migration20261130180000_log_archive";

/** Every migration, in order; listed explicitly so compiled code needs no file globbing. */
export const MIGRATIONS: MigrationObject[] = [
  { name: "Migration20250601000000_initial", class: Migration20250601000000_initial },
  { name: "Migration20261127000000_runners_for_real", class: Migration20261127000000_runners_for_real },
  { name: "Migration20261130000000_console", class: Migration20261130000000_console },
  { name: "Migration20261130120000_audit", class: Migration20261130120000_audit },
  { name: "Migration20261130140000_overrides", class: Migration20261130140000_overrides },
  { name: "Migration20261130160000_retry_operations", class: Migration20261130160000_retry_operations },
  { name: "Migration20261130180000_log_archive", class: Migration20261130180000_log_archive },
];
