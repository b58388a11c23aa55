/**
 * The status names users read and `--status` accepts, in lifecycle order. Kept apart from the
 * generated enum so that building the help text does not load the protobuf runtime; present.ts
 * maps each name onto the enum member of the same name.
 */
export const STATUS_CHOICES = ["uploading", "queued", "running", "completed", "failed", "timed_out", "cancelled"] as const;

export type StatusChoice = (typeof STATUS_CHOICES)[number];
