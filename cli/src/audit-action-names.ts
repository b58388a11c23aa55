// The `--action` names of `rgrid audit`, apart from the generated code so that parsing flags and
// --help do not load it. Each is an AuditAction member's name in lower case (audit-view.ts maps
// them, and fails to type-check if one is not).
export const AUDIT_ACTION_CHOICES = ["retry", "forced_retry", "automatic_retry", "batch_retry", "cancel", "sign_in"] as const;
export type AuditActionChoice = (typeof AUDIT_ACTION_CHOICES)[number];
