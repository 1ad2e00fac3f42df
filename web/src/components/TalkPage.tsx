import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { type Agent, ApiError, listAgents } from "../api";
import { authFor, loadApiKey, saveApiKey } from "../auth";
import { VoiceCall } from "../talk/call";
import { initialTalkState, talkReducer } from "../talk/reducer";
import { AgentPicker } from "./AgentPicker";
import { AuthPanel } from "./AuthPanel";
import { CallControls } from "./CallControls";
import { ErrorBanner } from "./ErrorBanner";
import { TranscriptView } from "./TranscriptView";

declare global {
  interface Window {
    /** The current call, for tests and debugging in the console. */
    voxflowCall?: VoiceCall;
  }
}

/** Talk to an agent: pick it, press Talk, speak; the agent answers out loud. */
export function TalkPage() {
  const [apiKey, setApiKey] = useState(loadApiKey);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [agentId, setAgentId] = useState("");
  const [loading, setLoading] = useState(false);
  const [pageError, setPageError] = useState<string | null>(null);
  const [level, setLevel] = useState(0);
  const [talk, dispatch] = useReducer(talkReducer, initialTalkState);
  const call = useRef<VoiceCall | null>(null);
  const listing = useRef(0); // only the latest listing's answer counts
  const inCall = talk.phase === "connecting" || talk.phase === "live";

  const reload = useCallback(async (key: string) => {
    const mine = ++listing.current;
    setLoading(true);
    try {
      const found = await listAgents(authFor(key));
      if (mine !== listing.current) return;
      setAgents(found);
      setAgentId((current) => (found.some((a) => a.id === current) ? current : (found[0]?.id ?? "")));
      setPageError(null);
    } catch (err) {
      if (mine !== listing.current) return;
      setAgents([]);
      setAgentId("");
      const signedOut = err instanceof ApiError && err.status === 401 && key.trim() === "";
      setPageError(
        signedOut ? "Enter an API key or log in to list your agents." : `Cannot list agents: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      if (mine === listing.current) setLoading(false);
    }
  }, []);

  // The agents the key (or the login cookie) may use; again shortly after the key changes.
  useEffect(() => {
    const timer = setTimeout(() => void reload(apiKey), 300);
    return () => clearTimeout(timer);
  }, [reload, apiKey]);

  useEffect(() => () => call.current?.dispose(), []);

  function changeKey(key: string) {
    setApiKey(key);
    saveApiKey(key.trim());
  }

  function startTalk() {
    // Started here, in the click handler: browsers only let a user gesture start audio.
    call.current?.dispose();
    const next = new VoiceCall(dispatch, setLevel);
    call.current = next;
    window.voxflowCall = next;
    setPageError(null);
    void next.start(authFor(apiKey), agentId);
  }

  const error = talk.error ? `${talk.error.message} (${talk.error.code})` : pageError;
  return (
    <>
      <AuthPanel apiKey={apiKey} onApiKey={changeKey} onLoggedIn={() => void reload(apiKey)} onError={setPageError} />
      <section aria-label="Talk">
        <h2>Talk</h2>
        <ErrorBanner
          message={error}
          onDismiss={() => {
            setPageError(null);
            dispatch({ type: "dismiss" });
          }}
        />
        <AgentPicker agents={agents} agentId={agentId} loading={loading} disabled={inCall} onPick={setAgentId} onReload={() => void reload(apiKey)} />
        <p />
        <CallControls
          phase={talk.phase}
          canTalk={agentId !== "" && !inCall}
          node={talk.node}
          outcome={talk.transferTo && talk.outcome ? `${talk.outcome} to ${talk.transferTo}` : talk.outcome}
          level={level}
          onTalk={startTalk}
          onHangup={() => call.current?.hangup()}
        />
      </section>
      <section aria-label="Transcript">
        <h2>Transcript</h2>
        <TranscriptView lines={talk.transcript} />
      </section>
    </>
  );
}
