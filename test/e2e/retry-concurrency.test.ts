// Many clients retrying one failed execution at once, against the real processes, on SQLite and
// on PostgreSQL: distinct request_ids make distinct retries, each with its own copied objects;
// one shared request_id makes exactly one retry and copies once.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { ExecutionService, RunnerService } from "@rgrid/proto";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { allExecutionIds, clientFor, createUploadedExecution, failExecution, objectDirs } from "../support/executions";
import type { ExecutionClient } from "../support/executions";
import { createScratchDatabase, postgresServerUrl, sqliteSuitesEnabled } from "../support/postgres";
import type { ScratchDatabase } from "../support/postgres";
import { printLogsOnFailure } from "../support/failure-logs";

jest.setTimeout(120_000);

const CONCURRENT = 50;

const backends = [
  { name: "SQLite", run: sqliteSuitesEnabled },
  { name: "PostgreSQL (set RGRID_TEST_POSTGRES_URL to run)", run: postgresServerUrl !== undefined },
];

describe.each(backends)("on $name", ({ name, run }) => {
  const suite = run ? describe : describe.skip;
  suite("concurrent retries", () => {
    let database: ScratchDatabase | undefined;
    let cluster: Cluster;
    let client: ExecutionClient;

    beforeAll(async () => {
      database = name.startsWith("PostgreSQL") ? await createScratchDatabase(postgresServerUrl ?? "") : undefined;
      cluster = await startCluster({ databaseUrl: database?.url });
      client = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
    });

    afterAll(async () => {
      await cluster?.shutdown();
      await database?.drop();
    });

    printLogsOnFailure("cluster", () => cluster?.logs, 60);

    async function failedOriginal(tag: string): Promise<string> {
      const id = await createUploadedExecution(client, {
        script: { name: "main.py", bytes: Buffer.from(`print("${tag}")\n`) },
        inputs: [
          { name: "data/a.csv", bytes: Buffer.from("a,b\n1,2\n") },
          { name: "data/b.json", bytes: Buffer.from('{"b": true}') },
        ],
        requestId: `create-${tag}`,
      });
      await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), id);
      return id;
    }

    /** The files of one execution's object directory, relative to it. */
    /**
     * The execution's script and input objects, which a retry copies. Its archived log is its own
     * record, which the log archive stores whenever its pass comes, and never copied.
     */
    async function objectFiles(executionId: string): Promise<string[]> {
      const entries = await readdir(join(cluster.objectsDir, "executions", executionId), { recursive: true, withFileTypes: true });
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(join(cluster.objectsDir, "executions", executionId).length + 1))
        .filter((file) => !file.startsWith("logs/"))
        .sort();
    }

    test(`${CONCURRENT} retries with distinct request_ids make ${CONCURRENT} retries, each with its own objects`, async () => {
      const originalId = await failedOriginal("distinct");
      const before = await allExecutionIds(client);
      const dirsBefore = await objectDirs(cluster.objectsDir);

      const answers = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, index) => client.retryExecution({ executionId: originalId, requestId: `distinct-${index}` })),
      );

      const retryIds = answers.map((answer) => answer.execution?.id ?? "");
      expect(new Set(retryIds).size).toBe(CONCURRENT);
      for (const answer of answers) {
        expect(answer.execution).toMatchObject({ retryOf: originalId, rootId: originalId, attempt: 2 });
      }
      const after = await allExecutionIds(client);
      expect(after.filter((id) => !before.includes(id)).sort()).toEqual([...retryIds].sort());
      for (const id of retryIds) {
        const { execution } = await client.getExecution({ executionId: id });
        expect(execution).toMatchObject({ retryOf: originalId, rootId: originalId, attempt: 2 });
      }
      expect(await objectDirs(cluster.objectsDir)).toEqual([...dirsBefore, ...retryIds].sort());
      const originalFiles = await objectFiles(originalId);
      expect(originalFiles).toEqual(["inputs/data/a.csv", "inputs/data/b.json", "script/main.py"]);
      for (const id of retryIds) {
        expect(await objectFiles(id)).toEqual(originalFiles);
      }
    });

    test(`${CONCURRENT} retries sharing one request_id make exactly one retry and copy once`, async () => {
      const originalId = await failedOriginal("shared");
      const before = await allExecutionIds(client);
      const dirsBefore = await objectDirs(cluster.objectsDir);

      const answers = await Promise.all(
        Array.from({ length: CONCURRENT }, () => client.retryExecution({ executionId: originalId, requestId: "shared-request" })),
      );

      const retryIds = new Set(answers.map((answer) => answer.execution?.id));
      expect(retryIds.size).toBe(1);
      const [retryId] = [...retryIds] as string[];
      expect(answers[0]?.execution).toMatchObject({ retryOf: originalId, rootId: originalId, attempt: 2 });
      expect(await allExecutionIds(client)).toEqual([retryId, ...before]);
      expect(await objectDirs(cluster.objectsDir)).toEqual([...dirsBefore, retryId].sort());
      expect(await objectFiles(retryId as string)).toEqual(await objectFiles(originalId));
      const { execution: original } = await client.getExecution({ executionId: originalId });
      expect(original?.retriedAs).toEqual([retryId]);
    });
  });
});
