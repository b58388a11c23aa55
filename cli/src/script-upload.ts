// A retry's new script version (`rgrid retry <id> --script fixed.py`): read and digested here,
// uploaded through the grant the retry's answer carries, then confirmed, as `rgrid run` does.
// Loaded only when --script is given: a plain retry does not pay for upload code.
import { uploadFile } from "@rgrid/common/transfer";
import type { Execution, TransferGrant } from "@rgrid/proto/execution";
import type { ServerContext } from "./context";
import { fileInfo, prepareScriptFile } from "./submit";
import type { LocalFile } from "./submit";
import { createUploadProgress } from "./upload-progress";

export { fileInfo, prepareScriptFile };

/** Uploads the new script through `grant`, then confirms: the retry leaves UPLOADING for the queue. */
export async function uploadNewScript(context: ServerContext, retry: Execution, script: LocalFile, grant: TransferGrant): Promise<Execution> {
  const progress = createUploadProgress(script.digest.sizeBytes, context.output.status);
  try {
    await uploadFile(grant, script.localPath, script.digest.sizeBytes, progress.sent);
  } finally {
    progress.end();
  }
  const confirmed = await context.resend(() => context.client.confirmUploads({ executionId: retry.id }));
  return confirmed.execution ?? retry;
}
