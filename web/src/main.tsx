import { createConnectTransport } from "@connectrpc/connect-web";
import { createRoot } from "react-dom/client";
import { App } from "./app";
import "./styles.css";

// Same origin as the page: execution-service serves both, so fetch's default (same-origin
// credentials) sends the httpOnly session cookie with every call; the console never sees or
// keeps an API key.
const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
});

const container = document.getElementById("root");
if (!container) throw new Error("index.html has no #root element");
createRoot(container).render(<App transport={transport} />);
