import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useRef } from "react";
import { idempotentMutationRetry } from "../connection";
import { invalidateExecutions } from "../queries";

/**
 * The one action a confirm dialog sends (retry, cancel, batch retry): sent at most once at a time
 * however often the button is pressed, re-sent after a lost connection only when the request is
 * idempotent (it carries the dialog's request_id), and followed by a re-read of what is shown.
 */
export function useConfirmAction<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  options: { idempotent: boolean },
) {
  const queryClient = useQueryClient();
  const sending = useRef(false);
  const mutation = useMutation(method, {
    retry: options.idempotent ? idempotentMutationRetry : false,
    onSuccess: () => invalidateExecutions(queryClient),
    onSettled: () => {
      sending.current = false;
    },
  });
  const confirm = (input: MessageInitShape<I>) => {
    if (sending.current) return;
    sending.current = true;
    mutation.mutate(input);
  };
  return { mutation, confirm };
}
