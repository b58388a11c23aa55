import { useEffect, useRef, useState } from "react";

/**
 * A text filter that writes to the URL once typing pauses (or on Enter), and follows the URL
 * when it changes elsewhere (back and forward).
 */
export function FilterInput({
  label,
  value,
  placeholder,
  onCommit,
  delayMs = 300,
}: {
  label: string;
  value: string;
  placeholder?: string;
  onCommit: (value: string) => void;
  delayMs?: number;
}) {
  const [text, setText] = useState(value);
  const committed = useRef(value);
  const commitRef = useRef(onCommit);
  commitRef.current = onCommit;

  useEffect(() => {
    if (value !== committed.current) {
      committed.current = value;
      setText(value);
    }
  }, [value]);

  useEffect(() => {
    if (text === committed.current) return undefined;
    const timer = window.setTimeout(() => {
      committed.current = text;
      commitRef.current(text);
    }, delayMs);
    return () => window.clearTimeout(timer);
  }, [text, delayMs]);

  return (
    <input
      type="search"
      aria-label={label}
      placeholder={placeholder}
      value={text}
      spellCheck={false}
      autoComplete="off"
      onChange={(event) => setText(event.target.value)}
      onKeyDown={(event) => {
        if (event.key === "Enter" && text !== committed.current) {
          committed.current = text;
          commitRef.current(text);
        }
      }}
    />
  );
}
