// Retries' copies coalesced into CopyInputsBatch calls, against a real storage-service on a port:
// each copy must be answered exactly as a CopyInputs of its own would have been.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth, newExecutionId, uploadFile } from "@rgrid/common";
import { StorageService } from "@rgrid/proto";
import { MAX_COALESCED_OBJECTS, MAX_WAIT_MILLIS, coalesceCopies } from "../src/copy-coalescing";
import { StorageRejectedError, StorageUnavailableError } from "../src/errors";
import type { ObjectName, StorageClient, StorageGateway } from "../src/storage";
import { createStorageGateway, inputObject, scriptObject } from "../src/storage";
import { startRealStorage } from "./real-storage";
import type { RealStorage } from "./real-storage";

const INTERNAL_TOKEN = "internal-token-for-coalescing-tests-0123456789";

/** What went to storage: each call's method, and how many calls were in flight when it left. */
interface CallLog {
  calls: Array<{ method: string; inFlightBefore: number }>;
  /** Set to make the next CopyInputsBatch fail as an unreachable storage would. */
  failNextBatch: boolean;
  /** Set to keep the next call from leaving until it resolves, as a storage slow to answer would. */
  delayNextCall?: Promise<void>;
}

describe("copies coalesced into CopyInputsBatch, against a real storage-service", () => {
  let storage: RealStorage;
  let client: StorageClient;
  let log: CallLog;
  let plain: StorageGateway;
  let coalesced: StorageGateway;

  beforeAll(async () => {
    storage = await startRealStorage({ name: "coalescing", internalToken: INTERNAL_TOKEN, backendConcurrency: 4 });
  });

  beforeEach(() => {
    log = { calls: [], failNextBatch: false };
    let inFlight = 0;
    const recorder: Interceptor = (next) => async (request) => {
      log.calls.push({ method: request.method.name, inFlightBefore: inFlight });
      if (request.method.name === "CopyInputsBatch" && log.failNextBatch) {
        log.failNextBatch = false;
        throw new ConnectError("connection refused", Code.Unavailable);
      }
      inFlight++;
      try {
        const delay = log.delayNextCall;
        log.delayNextCall = undefined;
        await delay;
        return await next(request);
      } finally {
        inFlight--;
      }
    };
    const transport = createConnectTransport({
      baseUrl: storage.server.url,
      httpVersion: "2",
      useBinaryFormat: true,
      interceptors: [bearerAuth(INTERNAL_TOKEN), recorder],
    });
    client = createClient(StorageService, transport);
    plain = createStorageGateway(client);
    coalesced = coalesceCopies(plain);
  });

  afterAll(async () => {
    await storage?.close();
  });

  /** An execution with a script and `inputs` inputs uploaded and committed; its object names. */
  const stored = async (inputs: number): Promise<{ id: string; script: string; inputNames: string[] }> => {
    const id = newExecutionId();
    const inputNames = Array.from({ length: inputs }, (_, index) => `in-${index}.json`);
    const objects: ObjectName[] = [scriptObject("main.py"), ...inputNames.map((name) => inputObject(name))];
    const grants = await plain.uploadGrants(id, objects);
    for (const grant of grants) {
      const local = join(storage.work, `upload-${grant.name.replace(/\W/g, "_")}-${id}`);
      await writeFile(local, `bytes of ${grant.name}`);
      await uploadFile(grant, local, Buffer.byteLength(`bytes of ${grant.name}`));
    }
    await plain.commitUploads(id, objects);
    return { id, script: "main.py", inputNames };
  };

  const namesUnder = async (executionId: string) =>
    (await client.listObjects({ executionId })).objects.map((object) => object.ref?.name).sort();

  /** A copy whose call is in flight, so that the next ones wait for it. */
  const callInFlight = (source: { id: string; script: string; inputNames: string[] }) =>
    coalesced.copyInputs(source.id, newExecutionId(), source.inputNames, source.script);

  const copyMethods = () => log.calls.map((call) => call.method).filter((method) => method.startsWith("CopyInputs"));

  test("a copy asked for while a call is free leaves at once, as one CopyInputs", async () => {
    const source = await stored(2);
    log.calls = [];
    const target = newExecutionId();
    const copied = await coalesced.copyInputs(source.id, target, source.inputNames, source.script);
    expect(copied.map((info) => [info.ref?.name, info.exists])).toEqual([
      ["main.py", true],
      ["in-0.json", true],
      ["in-1.json", true],
    ]);
    expect(copyMethods()).toEqual(["CopyInputs"]);
  });

  test("copies asked for meanwhile travel together, each answered as its own CopyInputs would be", async () => {
    const sources = [await stored(3), await stored(1), await stored(2)];
    // Ten copies of each original (concurrent retries of one original share their source), and
    // one asking for an input its source never had.
    const copies = sources.flatMap((source) =>
      Array.from({ length: 10 }, () => ({ source, target: newExecutionId(), inputNames: source.inputNames })),
    );
    const broken = { source: sources[1]!, target: newExecutionId(), inputNames: ["in-0.json", "never-uploaded.json"] };
    copies.splice(15, 0, broken);
    log.calls = [];

    const answers = await Promise.allSettled(copies.map((copy) => coalesced.copyInputs(copy.source.id, copy.target, copy.inputNames, copy.source.script)));

    expect(copyMethods().length).toBeLessThan(copies.length);
    expect(copyMethods()).toContain("CopyInputsBatch");
    const alone = await plain.copyInputs(broken.source.id, newExecutionId(), broken.inputNames, broken.source.script).catch((error: unknown) => error);
    for (const [index, copy] of copies.entries()) {
      const answer = answers[index]!;
      if (copy === broken) {
        expect(answer.status).toBe("rejected");
        const reason = (answer as PromiseRejectedResult).reason as unknown;
        expect(reason).toBeInstanceOf(StorageRejectedError);
        expect((reason as Error).message).toBe((alone as Error).message);
        expect(await namesUnder(copy.target)).toEqual([]);
        continue;
      }
      expect(answer.status).toBe("fulfilled");
      const copied = (answer as PromiseFulfilledResult<Awaited<ReturnType<StorageGateway["copyInputs"]>>>).value;
      expect(copied.map((info) => info.ref?.name)).toEqual([copy.source.script, ...copy.inputNames]);
      expect(copied.every((info) => info.exists)).toBe(true);
      expect(await namesUnder(copy.target)).toEqual([copy.source.script, ...copy.inputNames].sort());
    }
    // The originals keep every object.
    for (const source of sources) {
      expect(await namesUnder(source.id)).toEqual([source.script, ...source.inputNames].sort());
    }
  });

  test("a copy reading another's target never shares its call, and finds its objects", async () => {
    const first = await stored(2);
    const middle = newExecutionId();
    const last = newExecutionId();
    const holders = callInFlight(first);
    const chained = [
      coalesced.copyInputs(first.id, middle, first.inputNames, first.script),
      coalesced.copyInputs(middle, last, first.inputNames, first.script),
    ];
    await Promise.all([holders, ...chained]);
    expect(await namesUnder(last)).toEqual([first.script, ...first.inputNames].sort());
  });

  test("storage unreachable fails every copy of the call they travel in, and later copies go through", async () => {
    const source = await stored(1);
    log.calls = [];
    const holders = callInFlight(source);
    log.failNextBatch = true;
    const travellingTogether = Array.from({ length: 4 }, () => coalesced.copyInputs(source.id, newExecutionId(), source.inputNames, source.script));
    await holders;
    // Translated by the gateway, as any storage failure is: what the retry path turns into Unavailable.
    for (const answer of await Promise.allSettled(travellingTogether)) {
      expect(answer.status).toBe("rejected");
      expect((answer as PromiseRejectedResult).reason).toBeInstanceOf(StorageUnavailableError);
    }
    expect(copyMethods()).toContain("CopyInputsBatch");
    const later = newExecutionId();
    await coalesced.copyInputs(source.id, later, source.inputNames, source.script);
    expect(await namesUnder(later)).toEqual([source.script, ...source.inputNames].sort());
  });

  test("a copy of many objects is sent at once, neither held back nor holding others back", async () => {
    const small = await stored(1);
    const large = await stored(MAX_COALESCED_OBJECTS);
    log.calls = [];
    const holders = callInFlight(small);
    const big = coalesced.copyInputs(large.id, newExecutionId(), large.inputNames, large.script);
    const held = coalesced.copyInputs(small.id, newExecutionId(), small.inputNames, small.script);
    await Promise.all([holders, big, held]);
    // The large copy left while a call was out; the small one after it waited for that call.
    expect(log.calls.map((call) => [call.method, call.inFlightBefore])).toEqual([
      ["CopyInputs", 0],
      ["CopyInputs", 1],
      ["CopyInputs", expect.any(Number)],
    ]);
  });

  test("copies wait for a call that does not return for at most MAX_WAIT_MILLIS, then leave without it", async () => {
    const source = await stored(1);
    log.calls = [];
    let answer = () => undefined as void;
    log.delayNextCall = new Promise<void>((resolve) => (answer = resolve));
    const stuck = coalesced.copyInputs(source.id, newExecutionId(), source.inputNames, source.script);
    const started = performance.now();
    const targets = [newExecutionId(), newExecutionId(), newExecutionId()];
    await Promise.all(targets.map((target) => coalesced.copyInputs(source.id, target, source.inputNames, source.script)));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(MAX_WAIT_MILLIS - 5);
    // Together, while the first call is still out.
    expect(copyMethods()).toEqual(["CopyInputs", "CopyInputsBatch"]);
    for (const target of targets) {
      expect(await namesUnder(target)).toEqual([source.script, ...source.inputNames].sort());
    }
    answer();
    await stuck;
  });
});
