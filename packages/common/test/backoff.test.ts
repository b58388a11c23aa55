import { sendWithResends } from "../src/backoff";
import type { ResendOptions } from "../src/backoff";

class Retryable extends Error {}

/** A send that fails with `failures` in order, then answers "done". */
function failingThen(failures: Error[]) {
  const calls = { count: 0 };
  const send = () => {
    const failure = failures[calls.count++];
    return failure === undefined ? Promise.resolve("done") : Promise.reject(failure);
  };
  return { send, calls };
}

function recordingOptions(overrides: Partial<ResendOptions> = {}) {
  const waits: number[] = [];
  const notices: string[] = [];
  const options: ResendOptions = {
    attempts: 4,
    shouldResend: (error) => error instanceof Retryable,
    delayMs: (attempt) => attempt * 100,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    beforeResend: (error, attempt, delayMs) => notices.push(`${(error as Error).message} ${attempt} ${delayMs}`),
    ...overrides,
  };
  return { options, waits, notices };
}

describe("sendWithResends", () => {
  it("sends again after resendable failures, waiting the policy's delay and announcing each re-send", async () => {
    const { send, calls } = failingThen([new Retryable("a"), new Retryable("b")]);
    const { options, waits, notices } = recordingOptions();

    await expect(sendWithResends(send, options)).resolves.toBe("done");

    expect(calls.count).toBe(3);
    expect(waits).toEqual([100, 200]);
    expect(notices).toEqual(["a 1 100", "b 2 200"]);
  });

  it("throws the last error once the attempts are used up", async () => {
    const { send, calls } = failingThen([new Retryable("1"), new Retryable("2"), new Retryable("3")]);
    const { options, waits } = recordingOptions({ attempts: 3 });

    await expect(sendWithResends(send, options)).rejects.toThrow("3");

    expect(calls.count).toBe(3);
    expect(waits).toEqual([100, 200]);
  });

  it("throws at once an error not worth re-sending", async () => {
    const { send, calls } = failingThen([new Error("bad request")]);
    const { options, waits, notices } = recordingOptions();

    await expect(sendWithResends(send, options)).rejects.toThrow("bad request");

    expect(calls.count).toBe(1);
    expect(waits).toEqual([]);
    expect(notices).toEqual([]);
  });
});
