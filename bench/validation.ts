// What request validation costs: a typical CreateExecutionRequest (a script, 5 inputs, a few
// args, env and metadata entries, a request id) checked by the protos' rules (protovalidate), by
// those plus the service's code rules (what a request pays now), by the hand-written table they
// replaced, and by protovalidate with its default RE2 regex engine. Variants take turns, so a
// machine busy with other work slows each alike.
//
//   node bench/dist/validation.js
import { create, createRegistry } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import type { Validator } from "@bufbuild/protovalidate";
import { requestValidator } from "@rgrid/common";
import { executionCodeRules } from "@rgrid/execution";
import { CreateExecutionRequestSchema, file_rgrid_v1_rules } from "@rgrid/proto";
import type { CreateExecutionRequest } from "@rgrid/proto";
import { runBenchmark } from "./entry";
import { percentile, printTable } from "./stats";
import { baselineCreateExecutionRules, validateRequest } from "./validation-baseline";

const WARMUP_CALLS = 5_000;
const ROUNDS = 20;
const CALLS_PER_ROUND = 2_000;
const MAX_TIMEOUT_SECONDS = 86_400;

const SHA256 = "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7";

function typicalRequest(): CreateExecutionRequest {
  const file = (name: string, sizeBytes: bigint) => ({ name, sizeBytes, sha256: SHA256 });
  return create(CreateExecutionRequestSchema, {
    script: file("process.py", 2_048n),
    runtime: "python:3.11",
    args: ["data/train.csv", "data/test.csv", "--epochs", "3", "--out", "model.bin"],
    env: { MODE: "batch", LOG_LEVEL: "info", SEED: "42" },
    inputs: [
      file("data/train.csv", 1_048_576n),
      file("data/test.csv", 262_144n),
      file("config.json", 512n),
      file("vocab.txt", 65_536n),
      file("weights/base.bin", 8_388_608n),
    ],
    metadata: { team: "ml", experiment: "baseline-7" },
    timeoutSeconds: 3_600,
    requestId: "cli-5f1c9e0a3b7d4e2f9a6c8b1d0e3f5a7c",
  });
}

/** Checks one request, throwing when it is refused: every variant must accept the request. */
type Check = (request: CreateExecutionRequest) => void;

function protovalidate(validator: Validator): Check {
  return (request) => {
    const result = validator.validate(CreateExecutionRequestSchema, request);
    if (result.kind !== "valid") throw new Error(`refused: ${String(result.error)}`);
  };
}

function withCodeRules(validator: Validator): Check {
  const rules = executionCodeRules({ maxTimeoutSeconds: MAX_TIMEOUT_SECONDS }).filter((rule) => rule.typeName === CreateExecutionRequestSchema.typeName);
  const proto = protovalidate(validator);
  return (request) => {
    proto(request);
    const problem = rules.map((rule) => rule.check(request)).find((found) => found !== undefined);
    if (problem !== undefined) throw new Error(`refused: ${problem.field}: ${problem.problem}`);
  };
}

function baseline(): Check {
  const rules = baselineCreateExecutionRules(MAX_TIMEOUT_SECONDS);
  return (request) => {
    const problem = validateRequest(request, rules);
    if (problem !== undefined) throw new Error(`refused: ${problem}`);
  };
}

async function main(): Promise<void> {
  const request = typicalRequest();
  const variants: Array<{ name: string; check: Check; micros: number[] }> = [
    { name: "protovalidate (validator.validate)", check: protovalidate(requestValidator()), micros: [] },
    { name: "protovalidate + code rules (a request now)", check: withCodeRules(requestValidator()), micros: [] },
    { name: "hand-written table (before)", check: baseline(), micros: [] },
    {
      name: "protovalidate, default RE2 regex engine",
      check: protovalidate(createValidator({ registry: createRegistry(file_rgrid_v1_rules), failFast: true })),
      micros: [],
    },
  ];
  for (const variant of variants) {
    for (let call = 0; call < WARMUP_CALLS; call++) variant.check(request);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of variants) {
      for (let call = 0; call < CALLS_PER_ROUND; call++) {
        const started = process.hrtime.bigint();
        variant.check(request);
        variant.micros.push(Number(process.hrtime.bigint() - started) / 1000);
      }
    }
  }
  const us = (value: number) => `${value.toFixed(1)} µs`;
  process.stdout.write(
    `\nValidating a CreateExecutionRequest (1 script, 5 inputs, 6 args, 3 env, 2 metadata), ${ROUNDS * CALLS_PER_ROUND} calls each\n\n`,
  );
  printTable([
    ["variant", "p50", "p99"],
    ...variants.map(({ name, micros }): [string, string, string] => [name, us(percentile(micros, 50)), us(percentile(micros, 99))]),
  ]);
}

runBenchmark(main);
