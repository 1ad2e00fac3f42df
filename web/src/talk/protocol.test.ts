import { describe, expect, it } from "vitest";
import { parseServerMessage, resolveAudioUrl } from "./protocol";

describe("parseServerMessage", () => {
  it("parses each message of the protocol", () => {
    expect(parseServerMessage('{"type":"ready","input_sample_rate":16000,"output_sample_rate":24000}')).toEqual({
      type: "ready",
      input_sample_rate: 16000,
      output_sample_rate: 24000,
    });
    expect(parseServerMessage('{"type":"transcript","role":"agent","text":"Hi","final":false}')).toEqual({
      type: "transcript",
      role: "agent",
      text: "Hi",
      final: false,
    });
    expect(parseServerMessage('{"type":"node","id":"greet"}')).toEqual({ type: "node", id: "greet" });
    expect(parseServerMessage('{"type":"clear"}')).toEqual({ type: "clear" });
    expect(parseServerMessage('{"type":"transfer","target":"sip:desk@x.example","mode":"cold"}')).toEqual({
      type: "transfer",
      target: "sip:desk@x.example",
      mode: "cold",
    });
    expect(parseServerMessage('{"type":"transfer"}')).toBeNull();
    expect(parseServerMessage('{"type":"end","outcome":"completed"}')).toEqual({ type: "end", outcome: "completed" });
    expect(parseServerMessage('{"type":"error","code":"x","message":"y"}')).toEqual({ type: "error", code: "x", message: "y" });
  });

  it("rejects what is not the protocol", () => {
    for (const text of ["nope", "[]", "null", '{"type":"ready"}', '{"type":"transcript","role":"bot","text":"x"}', '{"type":"node"}', '{"type":"other"}']) {
      expect(parseServerMessage(text)).toBeNull();
    }
  });
});

describe("resolveAudioUrl", () => {
  const page = { protocol: "https:", host: "vox.example:8443" };
  it("keeps ws URLs and maps http ones and paths", () => {
    expect(resolveAudioUrl("ws://h/a?token=t", page)).toBe("ws://h/a?token=t");
    expect(resolveAudioUrl("http://h/a", page)).toBe("ws://h/a");
    expect(resolveAudioUrl("https://h/a", page)).toBe("wss://h/a");
    expect(resolveAudioUrl("/v1/sessions/s/audio?token=t", page)).toBe("wss://vox.example:8443/v1/sessions/s/audio?token=t");
  });
});
