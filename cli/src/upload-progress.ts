// "Uploading: 312.5 MiB of 1.0 GiB (31%), 48.2 MiB/s, 15.0s left" on a terminal while a run's
// script and inputs upload, so a large input does not upload in silence.
import type { StatusLine } from "./context";
import { formatBytes, formatDuration } from "./present";

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
      parts.push(`${formatBytes(Math.round(rate))}/s`);
    }
    if (rate > 0 && sentBytes < totalBytes) {
      // Whole seconds, as a countdown reads.
      parts.push(`${formatDuration(Math.ceil((totalBytes - sentBytes) / rate) * 1000)} left`);
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
