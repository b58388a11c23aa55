// The browser suites' Chromium and where they leave screenshots.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT } from "./grid";

export { launchChromium } from "../../bench/chromium";

/** Where the browser suites leave their screenshots (git-ignored test output). */
export const SCREENSHOT_DIR = join(REPO_ROOT, "test-output", "screenshots");

/** Saves what the page shows now as test output, named for the view. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
