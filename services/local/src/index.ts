export { serviceEntry, startLocalGrid } from "./grid";
export { runServiceCommand } from "./child-process";
export type { LocalGrid, LocalGridOptions } from "./grid";
export { writeCliConfig } from "./cli-config";
