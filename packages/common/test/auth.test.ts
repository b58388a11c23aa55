import { bearerToken, matchesAnySecret } from "../src/auth";

describe("matchesAnySecret", () => {
  const configured = ["first-secret", "second-secret"];

  test("accepts any configured secret, each time it is asked about the same array", () => {
    for (let round = 0; round < 2; round++) {
      expect(matchesAnySecret("first-secret", configured)).toBe(true);
      expect(matchesAnySecret("second-secret", configured)).toBe(true);
    }
  });

  test("refuses a secret that is not configured, including a prefix of one", () => {
    expect(matchesAnySecret("third-secret", configured)).toBe(false);
    expect(matchesAnySecret("first", configured)).toBe(false);
    expect(matchesAnySecret("first-secret", [])).toBe(false);
  });

  test("a different array of the same length is judged by its own contents", () => {
    expect(matchesAnySecret("first-secret", ["other-secret", "second-secret"])).toBe(false);
  });
});

test("bearerToken reads the token of a Bearer header and nothing else", () => {
  expect(bearerToken(new Headers({ authorization: "Bearer abc" }))).toBe("abc");
  expect(bearerToken(new Headers({ authorization: "Basic abc" }))).toBeUndefined();
  expect(bearerToken(new Headers())).toBeUndefined();
});
