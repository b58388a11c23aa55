// Real headless Chromium (Debian's package) driven by playwright-core, for the console's
// benchmark and its end-to-end tests: nothing is downloaded.
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";

const CHROMIUM_PATH = process.env.RGRID_CHROMIUM ?? "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // As root in a container, on a machine with no network: no sandbox, no GPU, and none of the
    // background connections Chromium would otherwise try at every start.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
}
