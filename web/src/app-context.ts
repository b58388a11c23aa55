import { createContext, useContext } from "react";
import type { ConnectionEvents } from "./connection";

export const ConnectionEventsContext = createContext<ConnectionEvents | null>(null);

export function useConnectionEvents(): ConnectionEvents {
  const events = useContext(ConnectionEventsContext);
  if (!events) throw new Error("useConnectionEvents outside the console's providers");
  return events;
}
