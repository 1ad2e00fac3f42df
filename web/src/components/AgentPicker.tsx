import type { Agent } from "../api";

interface Props {
  agents: Agent[];
  agentId: string;
  loading: boolean;
  disabled: boolean;
  onPick: (id: string) => void;
  onReload: () => void;
}

export function AgentPicker({ agents, agentId, loading, disabled, onPick, onReload }: Props) {
  return (
    <div className="row">
      <label htmlFor="agent">Agent</label>
      <select id="agent" value={agentId} disabled={disabled || loading || agents.length === 0} onChange={(e) => onPick(e.target.value)}>
        {agents.length === 0 && <option value="">{loading ? "loading…" : "no agents"}</option>}
        {agents.map((agent) => (
          <option key={agent.id} value={agent.id}>
            {agent.name}
          </option>
        ))}
      </select>
      <button type="button" onClick={onReload} disabled={disabled || loading}>
        Reload
      </button>
    </div>
  );
}
