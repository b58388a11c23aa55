import { createUploadProgress, formatDuration } from "../src/upload-progress";

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
    "Uploading: 10.0 MiB of 100.0 MiB (10%), 10.0 MiB/s, 9 s left",
    "Uploading: 20.0 MiB of 100.0 MiB (20%), 10.0 MiB/s, 8 s left",
  ]);

  now = 2010;
  progress.sent(80 * 1024 * 1024); // the last bytes are always drawn
  expect(shown.at(-1)).toBe("Uploading: 100.0 MiB of 100.0 MiB (100%), 49.8 MiB/s, 0 s left");
  progress.end();
  expect(cleared()).toBe(true);
});

test("stays silent where there is no terminal or nothing to upload", () => {
  const { status, shown } = recordingStatus();
  createUploadProgress(0, status).sent(0);
  createUploadProgress(100, undefined).sent(50);
  expect(shown).toEqual([]);
});

test("reads time left the way a person would", () => {
  expect([formatDuration(0.2), formatDuration(59), formatDuration(200), formatDuration(3900)]).toEqual(["1 s", "59 s", "3 min 20 s", "1 h 5 min"]);
});
