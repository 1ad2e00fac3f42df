import type { Line } from "../talk/reducer";

const ROLE_NAME = { user: "You", agent: "Agent" } as const;

export function TranscriptView({ lines }: { lines: Line[] }) {
  if (lines.length === 0) return <p className="hint">The transcript appears here.</p>;
  return (
    <ol id="transcript" className="transcript" aria-live="polite">
      {lines.map((line) => (
        <li key={line.id} data-role={line.role} data-final={line.final} className={line.final ? "final" : "partial"}>
          <span className="role">{ROLE_NAME[line.role]}</span>
          <span className="text">{line.text}</span>
        </li>
      ))}
    </ol>
  );
}
