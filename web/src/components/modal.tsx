import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from "react";
import { createPortal } from "react-dom";

/** Counts the open dialogs so the page behind them can be made inert. */
export class ModalLayer {
  private open = 0;
  private readonly listeners = new Set<() => void>();

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly isOpen = (): boolean => this.open > 0;

  enter(): () => void {
    this.change(1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.change(-1);
    };
  }

  private change(delta: number): void {
    this.open += delta;
    for (const listener of [...this.listeners]) listener();
  }
}

const ModalLayerContext = createContext<ModalLayer | null>(null);

export function ModalLayerProvider({ layer, children }: { layer: ModalLayer; children: ReactNode }) {
  return <ModalLayerContext.Provider value={layer}>{children}</ModalLayerContext.Provider>;
}

/** The page behind a dialog: inert and hidden from assistive technology while one is open. */
export function ModalBackground({ children, className }: { children: ReactNode; className?: string }) {
  const layer = useContext(ModalLayerContext);
  const covered = useSyncExternalStore(layer?.subscribe ?? noSubscribe, layer?.isOpen ?? notOpen);
  return (
    <div className={className} inert={covered} aria-hidden={covered ? true : undefined}>
      {children}
    </div>
  );
}

const noSubscribe = () => () => {};
const notOpen = () => false;

type DialogProps = {
  /** The dialog's accessible name. */
  label: string;
  title: string;
  onClose: () => void;
  /** While true, Escape and the backdrop do not close it (a request is in flight). */
  busy?: boolean;
  /** Room for a table. */
  wide?: boolean;
  children: ReactNode;
  footer: ReactNode;
};

/** A modal dialog rendered above the page; focus moves into it and back to the opener on close. */
export function Dialog({ label, title, onClose, busy = false, wide = false, children, footer }: DialogProps) {
  const layer = useContext(ModalLayerContext);
  const panel = useRef<HTMLDivElement>(null);
  const [opener] = useState(() => (typeof document === "undefined" ? null : document.activeElement));
  const busyRef = useRef(busy);
  busyRef.current = busy;
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    const leave = layer?.enter();
    const first = panel.current?.querySelector<HTMLElement>("[data-autofocus], button:not([disabled]), input, a[href]");
    first?.focus();
    return () => {
      leave?.();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, [layer, opener]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && !busyRef.current) {
        event.stopPropagation();
        closeRef.current();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  return createPortal(
    <div
      className="dialog-backdrop"
      onMouseDown={(event) => {
        if (event.target === event.currentTarget && !busyRef.current) closeRef.current();
      }}
    >
      <div className={wide ? "dialog wide" : "dialog"} role="dialog" aria-modal="true" aria-label={label} ref={panel}>
        <h2 className="dialog-title">{title}</h2>
        <div className="dialog-body">{children}</div>
        <div className="dialog-footer">{footer}</div>
      </div>
    </div>,
    document.body,
  );
}

/**
 * The footer of a dialog that confirms one action: the action's button until it is done, and
 * Close; both wait while the request is in flight.
 */
export function ConfirmFooter({
  action,
  tone,
  onConfirm,
  pending,
  done,
  onClose,
}: {
  action: string;
  tone: "primary" | "danger";
  onConfirm: () => void;
  pending: boolean;
  done: boolean;
  onClose: () => void;
}) {
  return (
    <>
      {!done && (
        <button type="button" className={tone} onClick={onConfirm} disabled={pending}>
          {action}
        </button>
      )}
      <button type="button" onClick={onClose} disabled={pending}>
        Close
      </button>
    </>
  );
}
