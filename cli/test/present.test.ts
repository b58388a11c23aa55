import { create } from "@bufbuild/protobuf";
import { ExecutionSchema } from "@rgrid/proto";
import { executionView } from "../src/present";

// The `--json` view is the CLI's one reading of an execution message: a field added to the proto
// must appear in it (or be named here as one it leaves out).

/** Fields of the message the view does not show. */
const NOT_IN_THE_VIEW = ["retried_by"];

test("the JSON view of an execution has a key for every field of the message, named as in the proto", () => {
  const keys = Object.keys(executionView(create(ExecutionSchema)));
  const fields = ExecutionSchema.fields.map((field) => field.name).filter((name) => !NOT_IN_THE_VIEW.includes(name));
  expect([...keys].sort()).toEqual([...fields].sort());
});
