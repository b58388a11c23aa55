import { createRegistry } from "@bufbuild/protobuf";
import type { DescField, DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import { parsePath } from "@bufbuild/protobuf/reflect";
import type { Path } from "@bufbuild/protobuf/reflect";
import { Violation, createValidator, violationsToProto } from "@bufbuild/protovalidate";
import type { Validator, ValidatorOptions } from "@bufbuild/protovalidate";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { file_rgrid_v1_rules } from "@rgrid/proto";

// Request validation: the rules declared in the protos (protovalidate), then the few a service
// keeps in code because protovalidate cannot say them. One interceptor per service applies both
// to every request, so no handler sees a message that breaks either.

/** A field a rule refused: its path as the protos name it ("inputs[2].name"), the rule, why. */
export interface FieldProblem {
  field: string;
  /** A stable id for clients that act on the refusal (buf.validate.Violation.rule_id). */
  rule: string;
  problem: string;
}

/**
 * A rule protovalidate cannot express (a configured limit, path safety), checked once a request
 * has passed the rules of its proto, so it may rely on them (lengths and counts are bounded).
 */
export interface CodeRule {
  readonly typeName: string;
  /** The first field the rule refuses, or undefined when the request is fine. */
  check(message: Message): FieldProblem | undefined;
}

/** A code rule for the requests of one message type. */
export function codeRule<Desc extends DescMessage>(
  schema: Desc,
  check: (message: MessageShape<Desc>) => FieldProblem | undefined,
): CodeRule {
  return { typeName: schema.typeName, check: (message) => check(message as MessageShape<Desc>) };
}

let sharedValidator: Validator | undefined;

/**
 * The process's validator. It compiles a message type's rules on first use and keeps them, so
 * every service in the process shares one, made once.
 */
export function requestValidator(): Validator {
  sharedValidator ??= createValidator({
    // The predefined rules (rgrid.v1.execution_id, ...) are extensions it must be told about.
    registry: createRegistry(file_rgrid_v1_rules),
    // The first bad field is enough to act on, and a hostile request with thousands of bad
    // entries costs no more than one with a single bad entry.
    failFast: true,
    regexMatch: javascriptRegexMatch(),
  });
  return sharedValidator;
}

/**
 * Matches the protos' patterns with JavaScript's engine instead of protovalidate's default, a
 * pure-TypeScript RE2 that was most of validation's cost (about 8 µs per match against 0.1 µs).
 * RE2 guarantees linear time for any pattern; these patterns are ours, anchored character classes
 * with bounded repeats, linear in JavaScript too. Keep it so: no nested repeats in the protos.
 * Only the protos' patterns reach this cache, so it stays as small as they are few.
 */
function javascriptRegexMatch(): NonNullable<ValidatorOptions["regexMatch"]> {
  const compiled = new Map<string, RegExp>();
  return (pattern, against) => {
    let regex = compiled.get(pattern);
    if (regex === undefined) {
      regex = new RegExp(pattern, "u");
      compiled.set(pattern, regex);
    }
    return regex.test(against);
  };
}

/**
 * Refuses a request that breaks a rule of its proto or one of `codeRules` with InvalidArgument
 * (`invalid <field path>: <problem>`), carrying the violation as a buf.validate.Violations
 * detail. Place it after authentication: a caller learns nothing about requests it may not make.
 * Streaming requests are checked message by message as the handler reads them.
 */
export function validateRequests(codeRules: readonly CodeRule[], validator: Validator = requestValidator()): Interceptor {
  const refusalOf = requestRefusals(codeRules, validator);
  const check = (schema: DescMessage, message: Message): void => {
    const refusal = refusalOf(schema, message);
    if (refusal !== undefined) {
      throw refusal;
    }
  };
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    return next({ ...req, message: checkEach(req.method.input, req.message, check) });
  };
}

/**
 * What the interceptor answers a request message with: its refusal, or undefined when the
 * message keeps every rule. Apart so that rules can be exercised without a server.
 */
export function requestRefusals(
  codeRules: readonly CodeRule[],
  validator: Validator = requestValidator(),
): (schema: DescMessage, message: Message) => ConnectError | undefined {
  const codeRulesByType = new Map<string, CodeRule[]>();
  for (const rule of codeRules) {
    codeRulesByType.set(rule.typeName, [...(codeRulesByType.get(rule.typeName) ?? []), rule]);
  }
  return (schema, message) => {
    const violation = protoViolation(validator, schema, message) ?? codeViolation(schema, message, codeRulesByType.get(schema.typeName));
    return violation === undefined ? undefined : refusal(violation);
  };
}

async function* checkEach(
  schema: DescMessage,
  messages: AsyncIterable<Message>,
  check: (schema: DescMessage, message: Message) => void,
): AsyncIterable<Message> {
  for await (const message of messages) {
    check(schema, message);
    yield message;
  }
}

function protoViolation(validator: Validator, schema: DescMessage, message: Message): Violation | undefined {
  const result = validator.validate(schema, message);
  switch (result.kind) {
    case "valid":
      return undefined;
    case "invalid":
      // failFast: the one violation found.
      return withNamedField(schema, result.violations[0]);
    case "error":
      // A rule that does not compile or evaluate is a bug in the protos, not in the request:
      // it reaches the client as Internal and the log with its cause.
      throw result.error;
  }
}

/**
 * A message-level rule (one that compares fields) has no field of its own; by this project's
 * convention its id starts with the field it is about ("target_execution_id.not_the_source"),
 * so that the refusal names that field like any other. For a rule of a nested message, that
 * field is appended to the path of the message ("overrides.unset_env", "copies[0].target_execution_id").
 */
function withNamedField(schema: DescMessage, violation: Violation): Violation {
  const ruledMessage = violation.field.length === 0 ? schema : messageLevelRuleTarget(violation);
  if (ruledMessage === undefined) {
    return violation;
  }
  const fieldName = violation.ruleId.split(".")[0];
  const field = ruledMessage.fields.find((candidate) => candidate.name === fieldName);
  return field === undefined
    ? violation
    : new Violation(violation.message, violation.ruleId, [...violation.field, field], violation.rule, false);
}

/**
 * The nested message a message-level rule was broken in; undefined for a field's own rule. A
 * message's CEL rule is the only kind that protovalidate reports with no rule path.
 */
function messageLevelRuleTarget(violation: Violation): DescMessage | undefined {
  if (violation.rule.length !== 0) {
    return undefined;
  }
  const last = violation.field.at(-1);
  if (last?.kind === "field") {
    return last.fieldKind === "message" ? last.message : undefined;
  }
  // An element of a repeated message field ("copies[0]"): the rule is of the element's message.
  const list = violation.field.at(-2);
  return last?.kind === "list_sub" && list?.kind === "field" && list.fieldKind === "list" && list.listKind === "message" ? list.message : undefined;
}

function codeViolation(schema: DescMessage, message: Message, rules: readonly CodeRule[] | undefined): Violation | undefined {
  for (const rule of rules ?? []) {
    const problem = rule.check(message);
    if (problem !== undefined) {
      return new Violation(problem.problem, problem.rule, parsePath(schema, problem.field), [], false);
    }
  }
  return undefined;
}

function refusal(violation: Violation): ConnectError {
  const [violations, schema] = violationsToProto([violation]);
  const field = describePath(violation.field) || "request";
  const problem = `${violation.forKey ? "key " : ""}${violation.message}${enumValuesHint(violation)}`;
  return new ConnectError(`invalid ${field}: ${problem}`, Code.InvalidArgument, undefined, [{ desc: schema, value: violations }]);
}

/** Map keys are shown at most this long: a key is the client's text, and may be huge. */
const MAX_SHOWN_KEY_CHARS = 64;

/** A path as protovalidate writes it (`env["HOME"]`, `inputs[2].name`), with keys quoted safely. */
function describePath(path: Path): string {
  let text = "";
  for (const element of path) {
    switch (element.kind) {
      case "field":
      case "oneof":
        text += `${text === "" ? "" : "."}${element.name}`;
        break;
      case "extension":
        text += `[${element.typeName}]`;
        break;
      case "list_sub":
        text += `[${element.index}]`;
        break;
      case "map_sub":
        text += `[${typeof element.key === "string" ? quoteKey(element.key) : String(element.key)}]`;
        break;
    }
  }
  return text;
}

function quoteKey(key: string): string {
  // JSON quoting escapes control characters, so a key cannot break the message's line.
  return JSON.stringify(key.length > MAX_SHOWN_KEY_CHARS ? `${key.slice(0, MAX_SHOWN_KEY_CHARS)}…` : key);
}

/**
 * protovalidate words enum refusals by number ("must not be in list [0]"); clients know the
 * values by name, so the refusal lists them (all but the zero value, which means "unset").
 */
function enumValuesHint(violation: Violation): string {
  if (!violation.ruleId.startsWith("enum.")) {
    return "";
  }
  const field = [...violation.field].reverse().find((element): element is DescField => element.kind === "field");
  const names = field?.enum?.values.filter((value) => value.number !== 0).map((value) => value.name) ?? [];
  return names.length === 0 ? "" : `; expected one of ${names.join(", ")}`;
}
