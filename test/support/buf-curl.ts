// The real `buf curl` (the binary the @bufbuild/buf package ships), for checking that the
// services can be discovered and called by server reflection alone, without the protos.
import { execFile } from "node:child_process";
import { join } from "node:path";

const BUF = join(__dirname, "..", "..", "node_modules", ".bin", "buf");

/** gRPC over cleartext HTTP/2, as the services serve it on their plain port. */
export const GRPC_OVER_H2C = ["--protocol", "grpc", "--http2-prior-knowledge"] as const;

/** The reflection protocols buf curl speaks, as its --reflect-protocol flag names them. */
export const REFLECT_PROTOCOLS = ["grpc-v1", "grpc-v1alpha"] as const;

export interface BufCurlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `buf curl` with `args`. A failed call is a result, not a rejection: buf curl then exits
 * non-zero and prints the error on stderr (an RPC error as JSON).
 */
export function bufCurl(args: readonly string[], timeoutMillis = 20_000): Promise<BufCurlResult> {
  return new Promise((resolve, reject) => {
    execFile(BUF, ["curl", ...args], { timeout: timeoutMillis }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== "number") {
        reject(error); // not started, or killed by the timeout
        return;
      }
      resolve({ exitCode: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

/** The lines of a `--list-services` or `--list-methods` answer. */
export const listedLines = (result: BufCurlResult): string[] => result.stdout.split("\n").filter((line) => line !== "");
