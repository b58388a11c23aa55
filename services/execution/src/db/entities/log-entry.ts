import { BigIntType, EntitySchema } from "@mikro-orm/core";

export type LogStreamName = "stdout" | "stderr" | "system";

/** One line of an execution's output; the runner numbers lines so resends are recognisable. */
export class LogLine {
  executionId!: string;
  sequence!: number;
  stream!: LogStreamName;
  line!: string;
  time!: Date;
}

export const LogLineSchema = new EntitySchema<LogLine>({
  class: LogLine,
  tableName: "log_entries",
  properties: {
    executionId: { type: "string", primary: true },
    sequence: { type: new BigIntType("number"), primary: true },
    stream: { type: "string" },
    line: { type: "text" },
    time: { type: "datetime" },
  },
});
