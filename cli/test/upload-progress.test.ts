import { createUploadProgress } from "../src/upload-progress";

function recordingStatus() {
  const shown: string[] = [];
  let cleared = false;
  return { status: { show: (text: string) => void shown.push(text), clear: () => void (cleared = true) }, shown, cleared: () => cleared };
}

test("shows bytes sent of the total, the rate and the time left, redrawn at most every 100 ms", () => {
  let now = 0;
  const { status, shown, cleared } = recordingStatus();
  const progress = createUploadProgress(100 * 1024 * 1024, status, () => now);

  now = 1000;
  progress.sent(10 * 1024 * 1024);
  now = 1050;
  progress.sent(1024 * 1024); // within 100 ms of the last drawing: not drawn
  now = 2000;
  progress.sent(9 * 1024 * 1024);
  expect(shown).toEqual([
    "Uploading: 10.0 MiB of 100.0 MiB (10%), 10.0 MiB/s, 9.0s left",
    "Uploading: 20.0 MiB of 100.0 MiB (20%), 10.0 MiB/s, 8.0s left",
  ]);

  now = 2010;
  progress.sent(80 * 1024 * 1024); // the last bytes are always drawn
  expect(shown.at(-1)).toBe("Uploading: 100.0 MiB of 100.0 MiB (100%), 49.8 MiB/s");
  progress.end();
  expect(cleared()).toBe(true);
});

test("stays silent where there is no terminal or nothing to upload", () => {
  const { status, shown } = recordingStatus();
  createUploadProgress(0, status).sent(0);
  createUploadProgress(100, undefined).sent(50);
  expect(shown).toEqual([]);
});
