import { useSyncExternalStore } from "react";
import type { ConnectionEvents } from "../connection";

/** Shown while calls fail for want of a connection; gone with the first answer. */
export function ConnectionBanner({ events }: { events: ConnectionEvents }) {
  const lost = useSyncExternalStore(events.subscribeLost, events.isLost);
  if (!lost) return null;
  return (
    <div className="connection-banner" role="status">
      Connection lost — reconnecting…
    </div>
  );
}
