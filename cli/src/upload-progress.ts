// "Uploading: 312.5 MiB of 1.0 GiB (31%), 48.2 MiB/s, 15 s left" on a terminal while a run's
// script and inputs upload, so a large input does not upload in silence.
import type { StatusLine } from "./context";
import { formatBytes } from "./present";

export interface UploadProgress {
  /** Bytes just sent, by any of the uploads. */
  sent(bytes: number): void;
  end(): void;
}

/** Redrawn at most this often: a terminal cannot show more, and each redraw costs a write. */
const REDRAW_EVERY_MS = 100;

const NO_PROGRESS: UploadProgress = { sent: () => undefined, end: () => undefined };

export function createUploadProgress(totalBytes: number, status: StatusLine | undefined, now: () => number = Date.now): UploadProgress {
  if (status === undefined || totalBytes === 0) {
    return NO_PROGRESS;
  }
  const startedAt = now();
  let sentBytes = 0;
  let drawnAt = Number.NEGATIVE_INFINITY;
  const draw = (): void => {
    const elapsedSeconds = (now() - startedAt) / 1000;
    const rate = elapsedSeconds > 0 ? sentBytes / elapsedSeconds : 0;
    const percent = Math.floor((sentBytes / totalBytes) * 100);
    const parts = [`Uploading: ${formatBytes(sentBytes)} of ${formatBytes(totalBytes)} (${percent}%)`];
    if (rate > 0) {
      parts.push(`${formatBytes(rate)}/s`, `${formatDuration((totalBytes - sentBytes) / rate)} left`);
    }
    status.show(parts.join(", "));
  };
  return {
    sent(bytes) {
      sentBytes = Math.min(totalBytes, sentBytes + bytes);
      if (now() - drawnAt >= REDRAW_EVERY_MS || sentBytes === totalBytes) {
        drawnAt = now();
        draw();
      }
    },
    end: () => status.clear(),
  };
}

/** "15 s", "3 min 20 s", "1 h 5 min": whole units, as a person reads a countdown. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.ceil(seconds));
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}
