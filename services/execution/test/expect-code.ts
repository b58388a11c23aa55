import { Code, ConnectError } from "@connectrpc/connect";

/** Awaits a call that must fail with `code` (and, when given, a message containing `messagePart`). */
export async function expectCode(promise: Promise<unknown>, code: Code, messagePart?: string): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => ConnectError.from(thrown),
  );
  expect(error).toBeDefined();
  expect(Code[error!.code]).toBe(Code[code]);
  if (messagePart !== undefined) {
    expect(error!.rawMessage).toContain(messagePart);
  }
  return error!;
}
