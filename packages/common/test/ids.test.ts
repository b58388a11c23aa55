import { EXECUTION_ID_PATTERN, newExecutionId, randomHex } from "../src/ids";

describe("random ids", () => {
  it("hands out hex of the asked length, never the same bytes twice, across refills of the pool", () => {
    // 1,000 ids of 16 bytes draw on the pool about four times over.
    const ids = Array.from({ length: 1000 }, () => newExecutionId());
    expect(ids.every((id) => EXECUTION_ID_PATTERN.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("serves odd sizes and sizes beyond the pool", () => {
    for (const bytes of [1, 7, 33, 4095, 4096, 4097, 10_000]) {
      expect(randomHex(bytes)).toMatch(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
    }
  });
});
