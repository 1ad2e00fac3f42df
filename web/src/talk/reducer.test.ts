import { describe, expect, it } from "vitest";
import type { ServerMessage } from "./protocol";
import { type TalkEvent, type TalkState, initialTalkState, talkReducer } from "./reducer";

const server = (message: ServerMessage): TalkEvent => ({ type: "server", message });
const run = (events: TalkEvent[], from: TalkState = initialTalkState) => events.reduce(talkReducer, from);
const live = run([{ type: "start" }, server({ type: "ready", input_sample_rate: 16000, output_sample_rate: 24000 })]);

describe("talkReducer", () => {
  it("remembers where the caller was transferred", () => {
    const s = run([server({ type: "transfer", target: "sip:desk@x.example", mode: "cold" }), server({ type: "end", outcome: "transferred" })], live);
    expect(s.transferTo).toBe("sip:desk@x.example");
    expect(s.outcome).toBe("transferred");
  });

  it("goes live on ready and keeps the output rate", () => {
    expect(run([{ type: "start" }]).phase).toBe("connecting");
    expect(live.phase).toBe("live");
    expect(live.outputRate).toBe(24000);
  });

  it("replaces partials by the final and keeps roles apart", () => {
    const s = run(
      [
        server({ type: "transcript", role: "user", text: "I'd", final: false }),
        server({ type: "transcript", role: "user", text: "I'd like a", final: false }),
        server({ type: "transcript", role: "user", text: "I'd like a table", final: true }),
        server({ type: "transcript", role: "agent", text: "Sure", final: false }),
        server({ type: "transcript", role: "user", text: "for two", final: false }),
        server({ type: "transcript", role: "agent", text: "Sure, for when?", final: true }),
        server({ type: "transcript", role: "user", text: "for two people", final: true }),
      ],
      live,
    );
    expect(s.transcript.map((l) => [l.role, l.text, l.final])).toEqual([
      ["user", "I'd like a table", true],
      ["agent", "Sure, for when?", true],
      ["user", "for two people", true],
    ]);
    expect(new Set(s.transcript.map((l) => l.id)).size).toBe(3);
  });

  it("appends after a final line of the same role", () => {
    const s = run(
      [
        server({ type: "transcript", role: "agent", text: "Hello.", final: true }),
        server({ type: "transcript", role: "agent", text: "How can I help?", final: true }),
      ],
      live,
    );
    expect(s.transcript.map((l) => l.text)).toEqual(["Hello.", "How can I help?"]);
  });

  it("tracks the current node and counts clears", () => {
    const s = run([server({ type: "node", id: "greet" }), server({ type: "clear" }), server({ type: "node", id: "ask_size" }), server({ type: "clear" })], live);
    expect(s.node).toBe("ask_size");
    expect(s.interruptions).toBe(2);
    expect(s.phase).toBe("live");
  });

  it("ends with the outcome and ignores the close that follows", () => {
    const s = run([server({ type: "end", outcome: "completed" }), { type: "closed" }], live);
    expect(s.phase).toBe("ended");
    expect(s.outcome).toBe("completed");
    expect(s.error).toBeNull();
  });

  it("shows a server error while the call goes on, and fails it when the server closes", () => {
    const erred = run([server({ type: "error", code: "stt_failed", message: "Speech recognition failed." })], live);
    expect(erred.phase).toBe("live");
    expect(erred.error).toEqual({ code: "stt_failed", message: "Speech recognition failed." });
    const closed = run([{ type: "closed", code: 1011 }], erred);
    expect(closed.phase).toBe("failed");
    expect(closed.error?.code).toBe("stt_failed");
  });

  it("reports a lost connection", () => {
    expect(run([{ type: "closed" }], live).error?.code).toBe("connection_closed");
    expect(run([{ type: "closed", code: 4404, reason: "no such session" }], live).error?.message).toBe(
      "The connection to the voice session closed (close code 4404: no such session).",
    );
  });

  it("hangs up locally, then takes the server's outcome", () => {
    const hung = run([{ type: "hangup" }], live);
    expect(hung.phase).toBe("ended");
    expect(hung.outcome).toBe("hangup");
    expect(run([server({ type: "end", outcome: "caller_hangup" }), { type: "closed" }], hung).outcome).toBe("caller_hangup");
  });

  it("dismisses an error and starts over cleanly", () => {
    const failed = run([{ type: "failed", error: { code: "api_error", message: "no" } }], live);
    const dismissed = run([{ type: "dismiss" }], failed);
    expect(dismissed.phase).toBe("idle");
    expect(dismissed.error).toBeNull();
    const again = run([{ type: "start" }], failed);
    expect(again.transcript).toEqual([]);
    expect(again.error).toBeNull();
  });
});
