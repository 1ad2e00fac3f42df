import type { Phase } from "../talk/reducer";

interface Props {
  phase: Phase;
  canTalk: boolean;
  node: string | null;
  outcome: string | null;
  level: number;
  onTalk: () => void;
  onHangup: () => void;
}

const PHASE_TEXT: Record<Phase, string> = {
  idle: "Ready",
  connecting: "Connecting…",
  live: "Live",
  ended: "Ended",
  failed: "Failed",
};

export function CallControls({ phase, canTalk, node, outcome, level, onTalk, onHangup }: Props) {
  const inCall = phase === "connecting" || phase === "live";
  return (
    <div className="row">
      {inCall ? (
        <button id="hangup" type="button" className="danger" onClick={onHangup}>
          Hang up
        </button>
      ) : (
        <button id="talk" type="button" className="primary" disabled={!canTalk} onClick={onTalk}>
          Talk
        </button>
      )}
      <span id="phase" data-phase={phase}>
        {PHASE_TEXT[phase]}
        {phase === "ended" && outcome ? ` (${outcome})` : ""}
      </span>
      <span className="hint">
        Node: <code id="node">{node ?? "—"}</code>
      </span>
      <span className="meter" title="Agent audio" aria-label="Agent audio level">
        <span style={{ width: `${Math.min(100, Math.round(level * 200))}%` }} />
      </span>
    </div>
  );
}
