import { getEventListeners } from "node:events";
import { linkSignals } from "../src/abort-signals";

describe("linkSignals", () => {
  test("aborts when either signal does", () => {
    const call = new AbortController();
    const stopping = new AbortController();
    const linked = linkSignals(call.signal, stopping.signal);
    expect(linked.signal.aborted).toBe(false);
    stopping.abort();
    expect(linked.signal.aborted).toBe(true);

    const other = linkSignals(new AbortController().signal, new AbortController().signal);
    const otherCall = new AbortController();
    const viaCall = linkSignals(otherCall.signal, new AbortController().signal);
    otherCall.abort();
    expect(viaCall.signal.aborted).toBe(true);
    expect(other.signal.aborted).toBe(false);
  });

  test("leaves nothing on the long-lived signal once released, however many calls came and went", () => {
    const stopping = new AbortController();
    for (let call = 0; call < 1000; call++) {
      linkSignals(new AbortController().signal, stopping.signal).release();
    }
    expect(getEventListeners(stopping.signal, "abort")).toHaveLength(0);
  });

  test("is aborted from the start when a signal already is", () => {
    const stopping = new AbortController();
    stopping.abort();
    expect(linkSignals(new AbortController().signal, stopping.signal).signal.aborted).toBe(true);
  });
});
